/**
 * Reads of user_balances. A user's balance is the sum of their per-shard contribution rows,
 * all in the user's one partition: one single-partition read.
 */
import pMap from 'p-map';
import type cassandra from 'cassandra-driver';
import { DomainError, balanceRowKey, decodeCorrectedRows, type BalanceRow, type BalanceRowKey, type CorrectedRow } from '@settlement/domain';

export interface UserAssetBalance {
  readonly assetId: number;
  readonly available: bigint;
  /** The locked column: funds reserved for open orders. */
  readonly frozen: bigint;
  /** available + frozen. */
  readonly total: bigint;
  /** Per shard, the sequence of the last message applied to this user's row of that shard. */
  readonly asOf: Readonly<Record<string, bigint>>;
}

export interface StoredBalanceRow extends BalanceRow {
  readonly shard: string;
}

/** A row of user_balances read with user_id, asset_id, shard, available, locked, version. */
export function storedBalanceRowOf(row: cassandra.types.Row): StoredBalanceRow {
  return {
    userId: row['user_id'] as bigint,
    assetId: row['asset_id'] as number,
    shard: row['shard'] as string,
    available: (row['available'] as bigint | null) ?? 0n,
    locked: (row['locked'] as bigint | null) ?? 0n,
    version: (row['version'] as bigint | null) ?? 0n,
  };
}

export class BalanceRepository {
  private readonly userCql: string;
  private readonly scanCql: string;
  private readonly correctionCql: string;

  constructor(
    private readonly client: cassandra.Client,
    keyspace: string,
    /** Partitions read at once by loadShardRows. Default 16. */
    private readonly readConcurrency = 16,
  ) {
    this.userCql = `SELECT asset_id, shard, available, locked, version FROM ${keyspace}.user_balances WHERE user_id = ?`;
    this.scanCql = `SELECT user_id, asset_id, shard, available, locked, version FROM ${keyspace}.user_balances`;
    this.correctionCql = `SELECT correction_id, rows FROM ${keyspace}.balance_corrections WHERE correction_id = ?`;
  }

  /** Every row of one user, all shards. */
  async getUserRows(userId: bigint): Promise<StoredBalanceRow[]> {
    const result = await this.client.execute(this.userCql, [userId], { prepare: true, isIdempotent: true });
    return result.rows.map((row) => ({
      userId,
      assetId: row['asset_id'] as number,
      shard: row['shard'] as string,
      available: (row['available'] as bigint | null) ?? 0n,
      locked: (row['locked'] as bigint | null) ?? 0n,
      version: (row['version'] as bigint | null) ?? 0n,
    }));
  }

  /** The balances a user sees, per asset (ascending asset id). */
  async getUserBalances(userId: bigint): Promise<UserAssetBalance[]> {
    const byAsset = new Map<number, { available: bigint; frozen: bigint; asOf: Record<string, bigint> }>();
    for (const row of await this.getUserRows(userId)) {
      let sum = byAsset.get(row.assetId);
      if (sum === undefined) {
        sum = { available: 0n, frozen: 0n, asOf: {} };
        byAsset.set(row.assetId, sum);
      }
      sum.available += row.available;
      sum.frozen += row.locked;
      sum.asOf[row.shard] = row.version;
    }
    return [...byAsset.entries()]
      .sort(([a], [b]) => a - b)
      .map(([assetId, s]) => ({ assetId, available: s.available, frozen: s.frozen, total: s.available + s.frozen, asOf: s.asOf }));
  }

  /**
   * The rows of one shard for the given (user, asset) keys, as stored; a key without a row is
   * absent from the result. One read per user, `readConcurrency` at a time.
   */
  async loadShardRows(shard: string, keys: Iterable<{ userId: bigint; assetId: number }>): Promise<Map<BalanceRowKey, BalanceRow>> {
    const wanted = new Map<bigint, Set<number>>();
    for (const { userId, assetId } of keys) {
      let assets = wanted.get(userId);
      if (assets === undefined) {
        assets = new Set();
        wanted.set(userId, assets);
      }
      assets.add(assetId);
    }
    const users = [...wanted.keys()];
    const found = new Map<BalanceRowKey, BalanceRow>();
    await pMap(
      users,
      async (userId) => {
        const assets = wanted.get(userId)!;
        for (const row of await this.getUserRows(userId)) {
          if (row.shard !== shard || !assets.has(row.assetId)) continue;
          found.set(balanceRowKey(userId, row.assetId), { userId, assetId: row.assetId, available: row.available, locked: row.locked, version: row.version });
        }
      },
      { concurrency: this.readConcurrency },
    );
    return found;
  }

  /**
   * The record of an applied correction: each row before and after it, as the settler wrote
   * them in the correction's batch. `rows` is undefined when the record cannot be read back.
   */
  async getAppliedCorrection(correctionId: string): Promise<{ rows: CorrectedRow[] | undefined } | undefined> {
    const result = await this.client.execute(this.correctionCql, [correctionId], { prepare: true, isIdempotent: true });
    const row = result.first();
    if (row === null) return undefined;
    return { rows: parseCorrectedRows(row['rows'] as string | null) };
  }

  /** Every row of the table, page by page (tests, full reconciliation). */
  async *scanAll(pageSize = 1000): AsyncGenerator<StoredBalanceRow> {
    let pageState: string | undefined;
    do {
      const result = await this.client.execute(this.scanCql, [], { prepare: true, fetchSize: pageSize, pageState, isIdempotent: true });
      for (const row of result.rows) yield storedBalanceRowOf(row);
      pageState = result.pageState ?? undefined;
    } while (pageState !== undefined);
  }
}

/** A record that cannot be decoded counts as unreadable (the caller then rewrites nothing). */
function parseCorrectedRows(json: string | null): CorrectedRow[] | undefined {
  if (json === null) return undefined;
  try {
    return decodeCorrectedRows(json);
  } catch (error) {
    if (error instanceof DomainError) return undefined;
    throw error;
  }
}
