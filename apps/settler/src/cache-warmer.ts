/**
 * Makes a shard's row cache complete again after it was emptied (a take-over, a restart, a
 * storage doubt): one background scan of user_balances, keeping the shard's rows. Until the
 * cache is complete, every job that touches a user this process has not cached reads that
 * user's rows first — after a restart, most jobs for a long while (each new user of the shard
 * is one read, and the last users come rarely; `npm run bench`, 10,000 users: three jobs in four
 * of the shards that moved between settlers still read rows minutes later). With the cache
 * complete, a miss is a row that does not exist, and no job reads rows.
 *
 * The table is partitioned by user, not by shard, so the scan reads every shard's rows; it gives
 * up, leaving the cache as it was, past `rowsReadMax` rows (settler.cache_warm_rows_max).
 */
import type { Logger } from 'pino';
import { balanceRowKey, type BalanceRow, type BalanceRowKey } from '@settlement/domain';
import type { BalanceRepository } from '@settlement/scylla';
import type { BalanceCache } from './balance-cache.js';
import type { Closing } from './closing.js';

export interface CacheWarmerDeps {
  readonly shard: string;
  readonly balances: BalanceRepository;
  readonly logger: Logger;
  readonly closing: Closing;
  /** Rows of the table read at most; 0: never warm. */
  readonly rowsReadMax: number;
}

export class CacheWarmer {
  private running = false;

  constructor(private readonly deps: CacheWarmerDeps) {}

  /** Starts a scan for `cache` unless one runs or the cache is complete; never throws. */
  warm(cache: BalanceCache): void {
    if (this.running || cache.complete || this.deps.rowsReadMax <= 0) return;
    this.running = true;
    const generation = cache.generation;
    const started = performance.now();
    void this.read()
      .then((rows) => {
        if (rows === undefined) return;
        const fields = { shard: this.deps.shard, rows: rows.size, ms: Math.round(performance.now() - started) };
        if (cache.completeWith(rows, generation)) this.deps.logger.info(fields, 'row cache complete: every balance row of the shard read');
        else this.deps.logger.info(fields, 'row cache scan not used: the cache was reset meanwhile, or the rows do not fit');
      })
      .catch((error: unknown) => this.deps.logger.warn({ err: error, shard: this.deps.shard }, 'row cache scan failed; jobs read the rows they miss'))
      .finally(() => (this.running = false));
  }

  /** The shard's rows, or undefined when the scan gave up (too many rows, or the process stops). */
  private async read(): Promise<Map<BalanceRowKey, BalanceRow> | undefined> {
    const { shard, balances, closing, rowsReadMax } = this.deps;
    const rows = new Map<BalanceRowKey, BalanceRow>();
    let read = 0;
    for await (const row of balances.scanAll()) {
      read += 1;
      if (read > rowsReadMax) {
        this.deps.logger.info({ shard, rowsReadMax }, 'row cache not warmed: the balance table has more rows than settler.cache_warm_rows_max');
        return undefined;
      }
      if (closing.isSet) return undefined;
      if (row.shard !== shard) continue;
      rows.set(balanceRowKey(row.userId, row.assetId), { userId: row.userId, assetId: row.assetId, available: row.available, locked: row.locked, version: row.version });
    }
    return rows;
  }
}
