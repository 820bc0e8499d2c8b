import type cassandra from 'cassandra-driver';

export interface SequenceGap {
  /** Shard, or "global" for gaps in the engine's one output_sequence counter. */
  readonly shard: string;
  /** First missing sequence. */
  readonly fromSeq: bigint;
  /** Last missing sequence. */
  readonly toSeq: bigint;
  readonly source: string;
  readonly detectedAt: Date;
}

/** Holes in a shard's sequence, recorded for the reconciler (never only logged). */
export class SequenceGapRepository {
  private readonly insertCql: string;
  private readonly listCql: string;

  constructor(private readonly client: cassandra.Client, keyspace: string) {
    this.insertCql = `INSERT INTO ${keyspace}.sequence_gaps (shard, from_seq, to_seq, source, detected_at) VALUES (?, ?, ?, ?, ?)`;
    this.listCql = `SELECT shard, from_seq, to_seq, source, detected_at FROM ${keyspace}.sequence_gaps WHERE shard = ? LIMIT ?`;
  }

  async record(gap: Omit<SequenceGap, 'detectedAt'>): Promise<void> {
    await this.client.execute(this.insertCql, [gap.shard, gap.fromSeq, gap.toSeq, gap.source, new Date()], { prepare: true, isIdempotent: true });
  }

  async list(shard: string, limit = 1000): Promise<SequenceGap[]> {
    const result = await this.client.execute(this.listCql, [shard, limit], { prepare: true });
    return result.rows.map((row) => ({
      shard: row['shard'] as string,
      fromSeq: row['from_seq'] as bigint,
      toSeq: row['to_seq'] as bigint,
      source: row['source'] as string,
      detectedAt: row['detected_at'] as Date,
    }));
  }
}
