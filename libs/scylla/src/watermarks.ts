/** Reads of shard_watermarks: how far each shard is settled. Written only inside settlement batches. */
import type cassandra from 'cassandra-driver';
import { u64FromCql } from './client.js';

export interface ShardWatermark {
  readonly shard: string;
  /** Highest shard sequence settled (applied or dead-lettered). */
  readonly lastSeq: bigint;
  /** `USING TIMESTAMP` of the last batch, µs; the next batch writes strictly above it. */
  readonly writeTs: bigint;
  readonly batchCount: bigint;
  /** Highest trade_id settled in the shard; undefined before its first trade. */
  readonly maxTradeId: bigint | undefined;
  readonly lastJobId: string | undefined;
  readonly updatedAt: Date | undefined;
}

export class WatermarkRepository {
  private readonly getCql: string;
  private readonly listCql: string;

  constructor(private readonly client: cassandra.Client, keyspace: string) {
    this.getCql = `SELECT shard, last_seq, write_ts, batch_count, max_trade_id, last_job_id, updated_at FROM ${keyspace}.shard_watermarks WHERE shard = ?`;
    this.listCql = `SELECT shard, last_seq, write_ts, batch_count, max_trade_id, last_job_id, updated_at FROM ${keyspace}.shard_watermarks`;
  }

  /** The shard's watermark; undefined before its first batch. */
  async get(shard: string, options: { consistency?: number } = {}): Promise<ShardWatermark | undefined> {
    const result = await this.client.execute(this.getCql, [shard], { prepare: true, isIdempotent: true, ...options });
    const row = result.first();
    return row === null ? undefined : fromRow(row);
  }

  /** Every shard's watermark (a small table: one row per shard). */
  async list(): Promise<ShardWatermark[]> {
    const result = await this.client.execute(this.listCql, [], { prepare: true, isIdempotent: true });
    return result.rows.map(fromRow).sort((a, b) => a.shard.localeCompare(b.shard));
  }
}

function fromRow(row: cassandra.types.Row): ShardWatermark {
  return {
    shard: row['shard'] as string,
    lastSeq: (row['last_seq'] as bigint | null) ?? 0n,
    writeTs: (row['write_ts'] as bigint | null) ?? 0n,
    batchCount: (row['batch_count'] as bigint | null) ?? 0n,
    maxTradeId: row['max_trade_id'] === null || row['max_trade_id'] === undefined ? undefined : u64FromCql(row['max_trade_id'] as bigint),
    lastJobId: (row['last_job_id'] as string | null) ?? undefined,
    updatedAt: (row['updated_at'] as Date | null) ?? undefined,
  };
}
