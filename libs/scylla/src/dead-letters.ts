import { createHash } from 'node:crypto';
import cassandra from 'cassandra-driver';

export interface DeadLetter {
  /** Shard the message belongs to, or "unrouted" when it could not be routed. */
  readonly shard: string;
  /** Which component rejected it: ingestor or settler. */
  readonly source: 'ingestor' | 'settler';
  /** Why, naming the field. */
  readonly reason: string;
  readonly field?: string | undefined;
  readonly seq?: bigint | undefined;
  readonly jobId?: string | undefined;
  /** The message as received (UTF-8 text, or base64 when not valid UTF-8). */
  readonly raw: string;
}

export interface StoredDeadLetter extends DeadLetter {
  readonly id: string;
  /**
   * When the letter was last written. Undefined for a letter written without created_at (the
   * settler's settlement batches) under a deterministic id, whose time bits are a hash.
   */
  readonly createdAt: Date | undefined;
}

/** What makes two dead letters the same letter (see deadLetterId). */
export type DeadLetterIdentity = Pick<DeadLetter, 'shard' | 'source' | 'seq' | 'jobId' | 'raw'>;

export const UNROUTED_SHARD = 'unrouted';

/** Rows one list() reads from a shard's partition at most (see list). */
export const DEAD_LETTER_SCAN_ROWS_MAX = 10_000;
const SCAN_PAGE_ROWS = 500;

/**
 * The dead letter's row id, derived from what the letter is, so the same letter written again
 * (the engine replays a bad frame, a job is re-delivered or re-applied, a write is retried)
 * overwrites its row instead of adding one. A message the settler rejects is identified by its
 * source, shard and sequence (one sequence is one message of the shard; its raw text may be
 * cut differently in another batch); anything without a sequence (a frame the ingestor
 * rejects, a job the settler cannot read) by source, shard, job id and raw text.
 *
 * The column is a timeuuid, so the id is a version-1 UUID (Cassandra and ScyllaDB check the
 * version nibble of a timeuuid) whose time, clock and node fields are 122 bits of a SHA-256:
 * collisions are out of reach, but the time field is no time, so rows no longer cluster by
 * age; created_at says when a letter was written.
 */
export function deadLetterId(letter: DeadLetterIdentity): cassandra.types.TimeUuid {
  const key = letter.seq !== undefined ? ['seq', letter.source, letter.shard, letter.seq.toString()] : ['raw', letter.source, letter.shard, letter.jobId ?? '', letter.raw];
  const bytes = Buffer.from(createHash('sha256').update(JSON.stringify(key)).digest().subarray(0, 16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x10; // version 1
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122 variant
  return new cassandra.types.TimeUuid(bytes);
}

/** Newest first; letters without a time after those with one, then by sequence, newest first. */
export function newestDeadLetterFirst(a: StoredDeadLetter, b: StoredDeadLetter): number {
  const at = a.createdAt?.getTime();
  const bt = b.createdAt?.getTime();
  if (at !== bt) return at === undefined ? 1 : bt === undefined ? -1 : bt - at;
  const as = a.seq ?? -1n;
  const bs = b.seq ?? -1n;
  return as === bs ? 0 : as < bs ? 1 : -1;
}

export interface DeadLetterRepositoryOptions {
  /** Rows one list() reads from a shard's partition at most. Default DEAD_LETTER_SCAN_ROWS_MAX. */
  readonly scanRowsMax?: number;
}

/** Messages that can never be settled, kept with their reason (never silently dropped). */
export class DeadLetterRepository {
  private readonly insertCql: string;
  private readonly listCql: string;
  private readonly scanRowsMax: number;

  constructor(private readonly client: cassandra.Client, keyspace: string, options: DeadLetterRepositoryOptions = {}) {
    this.insertCql = `INSERT INTO ${keyspace}.dead_letters (shard, dead_letter_id, source, reason, field, seq, job_id, raw, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    this.listCql = `SELECT shard, dead_letter_id, source, reason, field, seq, job_id, raw, created_at FROM ${keyspace}.dead_letters WHERE shard = ?`;
    this.scanRowsMax = options.scanRowsMax ?? DEAD_LETTER_SCAN_ROWS_MAX;
    if (!Number.isInteger(this.scanRowsMax) || this.scanRowsMax < 1) throw new Error(`scanRowsMax must be a positive integer, got ${this.scanRowsMax}`);
  }

  /**
   * The statement, for writing a dead letter inside a settlement batch. Built once per letter:
   * its id is the letter's identity, so a retry or a repeat rewrites the same row.
   */
  insertStatement(letter: DeadLetter, createdAt: Date = new Date()): { query: string; params: unknown[] } {
    return {
      query: this.insertCql,
      params: [letter.shard, deadLetterId(letter), letter.source, letter.reason, letter.field ?? null, letter.seq ?? null, letter.jobId ?? null, letter.raw, createdAt],
    };
  }

  async add(letter: DeadLetter, createdAt: Date = new Date()): Promise<void> {
    const { query, params } = this.insertStatement(letter, createdAt);
    // Same id, same values: a driver retry rewrites the row it may already have written.
    await this.client.execute(query, params, { prepare: true, isIdempotent: true });
  }

  /**
   * The shard's dead letters, one per letter, newest first, `limit` at most. Rows cluster by
   * a hash, not by age, so the partition is read whole (up to the repository's scanRowsMax
   * rows; beyond that the newest are not guaranteed) and sorted here. Rows stored before ids
   * were derived from the letter (a fresh timeuuid per write, so a repeated letter has several)
   * count once: the newest of them stands for the letter.
   */
  async list(shard: string, limit = 100): Promise<StoredDeadLetter[]> {
    const byIdentity = new Map<string, StoredDeadLetter>();
    let pageState: string | undefined;
    let scanned = 0;
    do {
      const fetchSize = Math.min(SCAN_PAGE_ROWS, this.scanRowsMax - scanned);
      const result = await this.client.execute(this.listCql, [shard], { prepare: true, fetchSize, pageState });
      scanned += result.rows.length;
      pageState = result.pageState ?? undefined;
      for (const row of result.rows) {
        const letter = storedLetter(row);
        const identity = deadLetterId(letter).toString();
        const seen = byIdentity.get(identity);
        // The row written under the deterministic id wins over older copies of the same letter.
        if (seen === undefined || (seen.id !== identity && (letter.id === identity || newestDeadLetterFirst(letter, seen) < 0))) byIdentity.set(identity, letter);
      }
    } while (pageState !== undefined && scanned < this.scanRowsMax);
    return [...byIdentity.values()].sort(newestDeadLetterFirst).slice(0, limit);
  }
}

function storedLetter(row: cassandra.types.Row): StoredDeadLetter {
  const id = row['dead_letter_id'] as cassandra.types.TimeUuid;
  const letter: DeadLetter = {
    shard: row['shard'] as string,
    source: row['source'] as DeadLetter['source'],
    reason: row['reason'] as string,
    field: (row['field'] as string | null) ?? undefined,
    seq: (row['seq'] as bigint | null) ?? undefined,
    jobId: (row['job_id'] as string | null) ?? undefined,
    raw: row['raw'] as string,
  };
  const written = (row['created_at'] as Date | null) ?? undefined;
  // A fresh timeuuid (rows from before) holds the write time; a derived one holds a hash.
  const createdAt = written ?? (id.equals(deadLetterId(letter)) ? undefined : id.getDate());
  return { ...letter, id: id.toString(), createdAt };
}
