/**
 * The last resort: records that could not be written to Cassandra are appended to
 * data_dir/backup.failed_trades_file (JSON lines), so nothing is dropped silently. Synchronous,
 * because it only runs when Cassandra is failing and the line must be on disk before we go on.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

export class FailedFile {
  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
  }

  append(kind: 'dead_letter' | 'sequence_gap' | 'sequence_gap_filled', record: Record<string, unknown>, error: unknown): void {
    const line = JSON.stringify({ kind, at: new Date().toISOString(), error: error instanceof Error ? error.message : String(error), ...record }, (_k, v: unknown) =>
      typeof v === 'bigint' ? v.toString() : v,
    );
    appendFileSync(this.file, `${line}\n`);
  }
}
