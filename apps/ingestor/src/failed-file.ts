/**
 * Append-only JSON-lines files on the ingestor's own disk (data_dir), written synchronously: a
 * line is on disk (the OS's page cache, which a killed process does not lose) before we go on.
 *
 * - The failed-trades file (backup.failed_trades_file), the last resort: records Cassandra did
 *   not take, so nothing is dropped silently. It only grows while Cassandra is failing.
 * - The dead-letters file (backup.dead_letters_file): every bad frame the ingestor keeps. Its
 *   other two copies can be lost at once: a Cassandra node with the periodic commit log comes
 *   back from kill -9 without the rows of its last seconds, and a Redis without persistence
 *   comes back empty (chaos run, 4 Dec: a bad frame gone from both, its place in the stream
 *   already settled past, so no replay brought it back). One line per bad frame.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export class JsonLinesFile {
  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
  }

  appendLine(record: Record<string, unknown>): void {
    const line = JSON.stringify(record, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    appendFileSync(this.file, `${line}\n`);
  }
}

export class FailedFile extends JsonLinesFile {
  append(kind: 'dead_letter' | 'sequence_gap' | 'sequence_gap_filled', record: Record<string, unknown>, error: unknown): void {
    this.appendLine({ kind, at: new Date().toISOString(), error: error instanceof Error ? error.message : String(error), ...record });
  }
}
