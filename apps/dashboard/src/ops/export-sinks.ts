/**
 * Output formats of `settle export`: CSV (csv-stringify), JSON lines, Parquet (hyparquet-writer).
 * Values are written as given: u64 ids and amounts arrive as exact decimal strings, small ids as
 * numbers. Each sink appends to an open file descriptor chunk by chunk (bounded memory) and can
 * report a checkpoint — the file's length after an fsync and, for Parquet, the row groups its
 * footer must list — from which a later run resumes (`openSink` with `resume`).
 */
import { closeSync, fsyncSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { stringify } from 'csv-stringify/sync';
import { ByteWriter, ParquetWriter } from 'hyparquet-writer';

export const EXPORT_FORMATS = ['csv', 'jsonl', 'parquet'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportColumn {
  readonly name: string;
  /** 'string' for ids and amounts (exact decimal strings), 'int32' for small ids. */
  readonly type: 'string' | 'int32';
}

export type ExportRecord = Readonly<Record<string, string | number>>;

export interface SinkCheckpoint {
  /** Bytes of the file that are complete. */
  readonly bytes: number;
  /** Parquet: the row groups written so far (JSON with tagged bigints), for the footer. */
  readonly parquetRowGroups?: string | undefined;
}

export interface ExportSink {
  /** Appends one chunk of rows (a Parquet row group). */
  write(rows: readonly ExportRecord[]): void;
  /** Flushes and fsyncs; what a resume needs. */
  checkpoint(): SinkCheckpoint;
  /** Completes the file (Parquet: the footer) and closes it. */
  finish(): void;
  /** Closes without completing (the file stays resumable from the last checkpoint). */
  abandon(): void;
}

export function openSink(format: ExportFormat, file: string, columns: readonly ExportColumn[], resume?: SinkCheckpoint): ExportSink {
  const fd = openSync(file, resume === undefined ? 'w' : 'r+');
  // Whatever a killed run wrote after its last checkpoint is cut off and written again.
  if (resume !== undefined) ftruncateSync(fd, resume.bytes);
  let position = resume?.bytes ?? 0;
  const append = (bytes: Uint8Array | string): void => {
    const buffer = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
    let done = 0;
    while (done < buffer.length) done += writeSync(fd, buffer, done, buffer.length - done, position + done);
    position += buffer.length;
  };
  const names = columns.map((c) => c.name);
  const base = {
    abandon: () => closeSync(fd),
  };
  if (format === 'csv') {
    let header = resume === undefined;
    return {
      ...base,
      write(rows) {
        if (rows.length === 0 && !header) return;
        append(stringify(rows as ExportRecord[], { header, columns: names }));
        header = false;
      },
      checkpoint: () => (fsyncSync(fd), { bytes: position }),
      finish() {
        if (header) append(stringify([], { header: true, columns: names }));
        fsyncSync(fd);
        closeSync(fd);
      },
    };
  }
  if (format === 'jsonl') {
    return {
      ...base,
      write(rows) {
        if (rows.length > 0) append(rows.map((r) => JSON.stringify(r, names)).join('\n') + '\n');
      },
      checkpoint: () => (fsyncSync(fd), { bytes: position }),
      finish() {
        fsyncSync(fd);
        closeSync(fd);
      },
    };
  }
  return parquetSink(fd, columns, append, () => position, resume);
}

function parquetSink(fd: number, columns: readonly ExportColumn[], append: (b: Uint8Array) => void, position: () => number, resume: SinkCheckpoint | undefined): ExportSink {
  const writer = new ByteWriter();
  const flush = (): void => {
    if (writer.index > 0) append(new Uint8Array(writer.buffer, 0, writer.index));
    writer.index = 0;
  };
  const schema = [
    { name: 'root', num_children: columns.length },
    ...columns.map((c) =>
      c.type === 'int32'
        ? { name: c.name, type: 'INT32' as const, repetition_type: 'REQUIRED' as const }
        : { name: c.name, type: 'BYTE_ARRAY' as const, converted_type: 'UTF8' as const, repetition_type: 'REQUIRED' as const },
    ),
  ];
  // Statistics and page indexes off: the footer then needs only the row groups, which a
  // checkpoint keeps, so a resumed run can write the footer of the whole file.
  const parquet = new ParquetWriter({ writer, schema, statistics: false, createdBy: 'settle export' });
  if (resume === undefined) flush();
  else {
    // The constructor wrote the leading magic again: the file has it already.
    writer.index = 0;
    writer.offset = resume.bytes;
    parquet.row_groups = reviveRowGroups(resume.parquetRowGroups ?? '[]');
    parquet.num_rows = parquet.row_groups.reduce((n, g) => n + g.num_rows, 0n);
  }
  return {
    abandon: () => closeSync(fd),
    write(rows) {
      if (rows.length === 0) return;
      void parquet.write({
        columnData: columns.map((c) => ({ name: c.name, data: rows.map((r) => r[c.name]!), offsetIndex: false })),
        rowGroupSize: rows.length,
      });
      flush();
    },
    checkpoint() {
      flush();
      fsyncSync(fd);
      const rowGroups = serializeRowGroups(parquet.row_groups);
      // A checkpoint that could not be read back would make a resumed file's footer wrong.
      if (serializeRowGroups(reviveRowGroups(rowGroups)) !== rowGroups) throw new Error('parquet row-group metadata does not survive a checkpoint');
      if (position() !== writer.offset) throw new Error(`parquet writer at ${writer.offset} but file at ${position()}`);
      return { bytes: position(), parquetRowGroups: rowGroups };
    },
    finish() {
      void parquet.finish();
      flush();
      fsyncSync(fd);
      closeSync(fd);
    },
  };
}

type RowGroups = ParquetWriter['row_groups'];

function serializeRowGroups(groups: RowGroups): string {
  return JSON.stringify(groups, (_k, v: unknown) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v));
}

function reviveRowGroups(text: string): RowGroups {
  return JSON.parse(text, (_k, v: unknown) =>
    typeof v === 'object' && v !== null && typeof (v as { $bigint?: unknown }).$bigint === 'string' ? BigInt((v as { $bigint: string }).$bigint) : v,
  ) as RowGroups;
}
