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
  /** Sequences of the gap that arrived after it was recorded → 'settled' or 'dead_letter'. */
  readonly filled: ReadonlyMap<bigint, GapFillOutcome>;
}

/** What became of a message that arrived after its gap was recorded. */
export type GapFillOutcome = 'settled' | 'dead_letter';

/** Holes in a shard's sequence, recorded for the reconciler (never only logged). */
export class SequenceGapRepository {
  private readonly insertCql: string;
  private readonly listCql: string;
  private readonly fillCql: string;
  private readonly listFillsCql: string;

  constructor(private readonly client: cassandra.Client, keyspace: string) {
    this.insertCql = `INSERT INTO ${keyspace}.sequence_gaps (shard, from_seq, to_seq, source, detected_at) VALUES (?, ?, ?, ?, ?)`;
    this.listCql = `SELECT shard, from_seq, to_seq, source, detected_at FROM ${keyspace}.sequence_gaps WHERE shard = ? LIMIT ?`;
    this.fillCql = `INSERT INTO ${keyspace}.sequence_gap_fills (shard, from_seq, seq, outcome, filled_at) VALUES (?, ?, ?, ?, ?)`;
    this.listFillsCql = `SELECT from_seq, seq, outcome FROM ${keyspace}.sequence_gap_fills WHERE shard = ?`;
  }

  async record(gap: Omit<SequenceGap, 'detectedAt' | 'filled'>): Promise<void> {
    await this.client.execute(this.insertCql, [gap.shard, gap.fromSeq, gap.toSeq, gap.source, new Date()], { prepare: true, isIdempotent: true });
  }

  /** Records that `seq` of the gap starting at `fromSeq` arrived after all, and its outcome. */
  async markFilled(shard: string, fromSeq: bigint, seq: bigint, outcome: GapFillOutcome): Promise<void> {
    await this.client.execute(this.fillCql, [shard, fromSeq, seq, outcome, new Date()], { prepare: true, isIdempotent: true });
  }

  /** The shard's recorded gaps, each with the sequences that arrived after it was recorded. */
  async list(shard: string, limit = 1000): Promise<SequenceGap[]> {
    const [result, fills] = await Promise.all([
      this.client.execute(this.listCql, [shard, limit], { prepare: true }),
      this.client.execute(this.listFillsCql, [shard], { prepare: true }),
    ]);
    const filledByGap = new Map<bigint, Map<bigint, GapFillOutcome>>();
    for (const row of fills.rows) {
      const fromSeq = row['from_seq'] as bigint;
      const filled = filledByGap.get(fromSeq) ?? new Map<bigint, GapFillOutcome>();
      filled.set(row['seq'] as bigint, row['outcome'] as GapFillOutcome);
      filledByGap.set(fromSeq, filled);
    }
    return result.rows.map((row) => ({
      shard: row['shard'] as string,
      fromSeq: row['from_seq'] as bigint,
      toSeq: row['to_seq'] as bigint,
      source: row['source'] as string,
      detectedAt: row['detected_at'] as Date,
      filled: filledByGap.get(row['from_seq'] as bigint) ?? new Map(),
    }));
  }
}

