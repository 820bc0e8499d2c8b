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
  readonly createdAt: Date;
}

export const UNROUTED_SHARD = 'unrouted';

/** Messages that can never be settled, kept with their reason (never silently dropped). */
export class DeadLetterRepository {
  private readonly insertCql: string;
  private readonly listCql: string;

  constructor(private readonly client: cassandra.Client, keyspace: string) {
    this.insertCql = `INSERT INTO ${keyspace}.dead_letters (shard, dead_letter_id, source, reason, field, seq, job_id, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`;
    this.listCql = `SELECT shard, dead_letter_id, source, reason, field, seq, job_id, raw FROM ${keyspace}.dead_letters WHERE shard = ? LIMIT ?`;
  }

  /** The statement, for writing a dead letter inside a settlement batch. */
  insertStatement(letter: DeadLetter): { query: string; params: unknown[] } {
    return {
      query: this.insertCql,
      params: [letter.shard, cassandra.types.TimeUuid.now(), letter.source, letter.reason, letter.field ?? null, letter.seq ?? null, letter.jobId ?? null, letter.raw],
    };
  }

  async add(letter: DeadLetter): Promise<void> {
    const { query, params } = this.insertStatement(letter);
    await this.client.execute(query, params, { prepare: true, isIdempotent: false });
  }

  /** Newest first. */
  async list(shard: string, limit = 100): Promise<StoredDeadLetter[]> {
    const result = await this.client.execute(this.listCql, [shard, limit], { prepare: true });
    return result.rows.map((row) => {
      const id = row['dead_letter_id'] as cassandra.types.TimeUuid;
      return {
        shard: row['shard'] as string,
        id: id.toString(),
        createdAt: id.getDate(),
        source: row['source'] as DeadLetter['source'],
        reason: row['reason'] as string,
        field: (row['field'] as string | null) ?? undefined,
        seq: (row['seq'] as bigint | null) ?? undefined,
        jobId: (row['job_id'] as string | null) ?? undefined,
        raw: row['raw'] as string,
      };
    });
  }
}
