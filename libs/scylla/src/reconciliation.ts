/**
 * CQL of the reconciler: reads of a user's balance rows and history (paged), token-range scans
 * of user_balances, funding totals and watermarks; writes of reconciliation_jobs and
 * reconciliation_errors. The keyspace comes from validated config; every value is bound.
 */
import type cassandra from 'cassandra-driver';
import type { FundingHistoryRow, ReconcileFinding, ReconcileFindingKind, ShardBalanceRow, TradeHistoryRow } from '@settlement/domain';
import { u64FromCql } from './client.js';
import { BucketedHistoryReader } from './bucketed-history.js';
import { HistoryLayoutFlag, HistoryLayoutRepository } from './history-layout.js';
import { storedBalanceRowOf } from './balances.js';

/** The Murmur3 partitioner's tokens are signed 64-bit; no key has the minimum token. */
export const TOKEN_MIN = -(2n ** 63n);
export const TOKEN_MAX = 2n ** 63n - 1n;

/** Stored in place of a missing key part of a finding (clustering columns cannot be null). */
export const NO_USER_ID = -1n;
export const NO_ASSET_ID = 0;
export const NO_SHARD = '*';

export interface ReconciliationReaderOptions {
  /** Rows per page when reading a user's history or scanning ledger_events. Default 1000. */
  readonly fetchSize?: number;
  /** Whether the bucketed history is read (default: the keyspace's history_migration, cached 10 s). */
  readonly layout?: HistoryLayoutFlag | undefined;
}

const TRADE_ROW_COLUMNS = 'user_id, symbol, seq, side, trade_id, buyer_user_id, seller_user_id, base_asset, quote_asset, quantity, quote_amount, buyer_refund, seller_refund, buyer_fee, seller_fee';
const FUNDING_ROW_COLUMNS = 'user_id, seq, event_type, amount, currency';

export interface UserToken {
  readonly userId: bigint;
  /** token(user_id): where the next range scan continues. */
  readonly token: bigint;
}

export interface FundingTotalsRow {
  readonly eventType: string;
  readonly amount: bigint;
  readonly currency: number;
}

const READ = { prepare: true, isIdempotent: true } as const;

/** Reads only: safe to retry, never writes. */
export class ReconciliationReader {
  private readonly fetchSize: number;
  private readonly bucketed: BucketedHistoryReader;
  private readonly layout: HistoryLayoutFlag;
  private readonly cql: Readonly<Record<'balances' | 'trades' | 'funding' | 'users' | 'tradeUsers' | 'fundingUsers' | 'ledger' | 'watermarks', string>>;

  constructor(private readonly client: cassandra.Client, private readonly keyspace: string, options: ReconciliationReaderOptions = {}) {
    this.fetchSize = options.fetchSize ?? 1000;
    this.bucketed = new BucketedHistoryReader(client, keyspace, []);
    this.layout = options.layout ?? new HistoryLayoutFlag(new HistoryLayoutRepository(client, keyspace));
    this.cql = {
      balances: `SELECT user_id, asset_id, shard, available, locked, version FROM ${keyspace}.user_balances WHERE user_id = ?`,
      // The pre-bucket tables, read until `settle migrate-history` is done.
      trades: `SELECT ${TRADE_ROW_COLUMNS} FROM ${keyspace}.trades_by_user WHERE user_id = ?`,
      funding: `SELECT ${FUNDING_ROW_COLUMNS} FROM ${keyspace}.ledger_events_by_user WHERE user_id = ?`,
      users: `SELECT DISTINCT user_id, token(user_id) AS t FROM ${keyspace}.user_balances WHERE token(user_id) > ? LIMIT ?`,
      tradeUsers: `SELECT DISTINCT user_id, token(user_id) AS t FROM ${keyspace}.trades_by_user WHERE token(user_id) > ? AND token(user_id) <= ? LIMIT ?`,
      fundingUsers: `SELECT DISTINCT user_id, token(user_id) AS t FROM ${keyspace}.ledger_events_by_user WHERE token(user_id) > ? AND token(user_id) <= ? LIMIT ?`,
      ledger: `SELECT event_type, amount, currency FROM ${keyspace}.ledger_events`,
      watermarks: `SELECT shard, last_seq FROM ${keyspace}.shard_watermarks`,
    };
  }

  /** Every (asset, shard) row of one user: a single-partition read. */
  async userBalanceRows(userId: bigint): Promise<ShardBalanceRow[]> {
    const rows: ShardBalanceRow[] = [];
    for await (const row of this.paged(this.cql.balances, [userId])) {
      rows.push(storedBalanceRowOf(row));
    }
    return rows;
  }

  /**
   * The user's trade history, page by page (one row per side the user had); on the bucketed
   * layout bucket by bucket, so the fee account is never held whole.
   */
  async *userTrades(userId: bigint): AsyncGenerator<TradeHistoryRow> {
    const rows = (await this.layout.bucketed()) ? this.bucketed.rows(userId, 'trades', TRADE_ROW_COLUMNS, this.fetchSize, this.keyspace) : this.paged(this.cql.trades, [userId]);
    for await (const row of rows) {
      yield {
        userId: row['user_id'] as bigint,
        symbol: row['symbol'] as string,
        seq: row['seq'] as bigint,
        side: row['side'] as string,
        tradeId: u64FromCql(row['trade_id'] as bigint),
        buyerUserId: row['buyer_user_id'] as bigint,
        sellerUserId: row['seller_user_id'] as bigint,
        baseAsset: row['base_asset'] as number,
        quoteAsset: row['quote_asset'] as number,
        quantity: row['quantity'] as bigint,
        quoteAmount: row['quote_amount'] as bigint,
        buyerRefund: row['buyer_refund'] as bigint,
        sellerRefund: row['seller_refund'] as bigint,
        buyerFee: row['buyer_fee'] as bigint,
        sellerFee: row['seller_fee'] as bigint,
      };
    }
  }

  async *userFundingEvents(userId: bigint): AsyncGenerator<FundingHistoryRow> {
    const rows = (await this.layout.bucketed()) ? this.bucketed.rows(userId, 'funding', FUNDING_ROW_COLUMNS, this.fetchSize, this.keyspace) : this.paged(this.cql.funding, [userId]);
    for await (const row of rows) {
      yield {
        userId: row['user_id'] as bigint,
        seq: row['seq'] as bigint,
        eventType: row['event_type'] as string,
        amount: row['amount'] as bigint,
        currency: row['currency'] as number,
      };
    }
  }

  /**
   * Up to `limit` users of user_balances whose partition token is above `afterToken`, in token
   * order. Start at TOKEN_MIN; continue from the last token returned; fewer than `limit` users
   * means the ring's end was reached.
   */
  async usersAfterToken(afterToken: bigint, limit: number): Promise<UserToken[]> {
    const result = await this.client.execute(this.cql.users, [afterToken, limit], { ...READ, fetchSize: limit });
    return result.rows.map((row) => ({ userId: row['user_id'] as bigint, token: row['t'] as bigint }));
  }

  /**
   * Users with history (user_history_buckets; before the backfill trades_by_user or ledger_events_by_user) whose token is in
   * (afterToken, upToToken]: all three tables share the partitioner, so the same range of
   * user_balances tells which of them have no balance row at all. Read `pageSize` at a time.
   */
  async historyUsersInRange(afterToken: bigint, upToToken: bigint, pageSize: number): Promise<bigint[]> {
    // Bucketed: user_history_buckets has one partition per user with history of either kind.
    if (await this.layout.bucketed()) return this.bucketed.usersInRange(afterToken, upToToken, pageSize);
    const users = new Set<bigint>();
    for (const query of [this.cql.tradeUsers, this.cql.fundingUsers]) {
      let after = afterToken;
      for (;;) {
        const result = await this.client.execute(query, [after, upToToken, pageSize], { ...READ, fetchSize: pageSize });
        for (const row of result.rows) users.add(row['user_id'] as bigint);
        if (result.rows.length < pageSize) break;
        after = result.rows[result.rows.length - 1]!['t'] as bigint;
      }
    }
    return [...users];
  }

  /**
   * About `size` distinct users drawn at random: `ranges` random start tokens, each followed by
   * a run of consecutive users in token order (tokens are hashes, so a run is a random set).
   * A run that reaches the ring's end wraps to its start. Fewer users come back only when the
   * table has fewer, or when overlapping runs met again within the bounded number of tries.
   */
  async sampleUsers(size: number, ranges: number, randomToken: () => bigint): Promise<bigint[]> {
    const picked = new Set<bigint>();
    const perRange = Math.max(1, Math.ceil(size / Math.max(1, ranges)));
    for (let attempt = 0; attempt < ranges * 2 && picked.size < size; attempt++) {
      const start = randomToken();
      const want = Math.min(perRange, size - picked.size);
      const run = await this.usersAfterToken(start, want);
      if (run.length < want) {
        const wrapped = await this.usersAfterToken(TOKEN_MIN, want - run.length);
        run.push(...wrapped.filter((u) => u.token <= start));
      }
      if (run.length === 0) break;
      for (const user of run) if (picked.size < size) picked.add(user.userId);
    }
    return [...picked];
  }

  /** Every funding event (for conservation), page by page: a full scan, for full mode only. */
  async *ledgerEvents(): AsyncGenerator<FundingTotalsRow> {
    for await (const row of this.paged(this.cql.ledger, [])) {
      yield { eventType: row['event_type'] as string, amount: row['amount'] as bigint, currency: row['currency'] as number };
    }
  }

  /** Last applied sequence per shard. */
  async shardWatermarks(): Promise<Map<string, bigint>> {
    const marks = new Map<string, bigint>();
    for await (const row of this.paged(this.cql.watermarks, [])) marks.set(row['shard'] as string, row['last_seq'] as bigint);
    return marks;
  }

  private async *paged(query: string, params: unknown[]): AsyncGenerator<cassandra.types.Row> {
    // The driver's async iterator fetches the next page when the current one is consumed, so at
    // most one page is held in memory.
    const result = await this.client.execute(query, params, { ...READ, fetchSize: this.fetchSize });
    for await (const row of result) yield row;
  }
}

export type ReconciliationJobStatus = 'running' | 'completed' | 'failed' | 'abandoned';

export interface ReconciliationJobRecord {
  readonly jobId: string;
  /** Who asked: scheduler, manual, cli, api, … */
  readonly trigger: string;
  readonly mode: 'sample' | 'users' | 'full';
  readonly fix: boolean;
  readonly status: ReconciliationJobStatus;
  readonly startedAt: Date;
  readonly finishedAt?: Date | undefined;
  readonly usersChecked: number;
  readonly rowsChecked: number;
  /** Balance errors found (warnings such as dead letters are in the summary). */
  readonly errors: number;
  readonly durationMs: number;
  /** JSON of the run's summary. */
  readonly summary: string;
}

export interface FindingRecord {
  readonly finding: ReconcileFinding;
  /** A correction was applied and a re-check found the row right. */
  readonly fixed: boolean;
  /** Extra facts stored with the message in `detail` (JSON), e.g. before/after of a fix. */
  readonly detail?: Readonly<Record<string, unknown>> | undefined;
}

export interface StoredFinding extends ReconcileFinding {
  readonly jobId: string;
  readonly fixed: boolean;
  /** Parsed `detail` JSON; bigints are decimal strings there. */
  readonly detail: Record<string, unknown>;
  readonly detectedAt: Date;
}

/** Statements of one job's findings per batch: one partition, kept to tens of statements. */
const FINDINGS_PER_BATCH = 50;

function jsonWithBigints(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** Records of reconciliation runs and their findings. */
export class ReconciliationStore {
  private readonly cql: Readonly<Record<'job' | 'finding' | 'getJob' | 'listFindings', string>>;

  constructor(private readonly client: cassandra.Client, keyspace: string) {
    this.cql = {
      job:
        `INSERT INTO ${keyspace}.reconciliation_jobs (job_id, trigger, mode, fix, status, started_at, finished_at, users_checked, rows_checked, errors, duration_ms, summary) ` +
        `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      finding:
        `INSERT INTO ${keyspace}.reconciliation_errors (job_id, user_id, asset_id, shard, kind, expected_available, expected_locked, actual_available, actual_locked, fixed, detail, detected_at) ` +
        `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      getJob: `SELECT job_id, trigger, mode, fix, status, started_at, finished_at, users_checked, rows_checked, errors, duration_ms, summary FROM ${keyspace}.reconciliation_jobs WHERE job_id = ?`,
      listFindings:
        `SELECT job_id, user_id, asset_id, shard, kind, expected_available, expected_locked, actual_available, actual_locked, fixed, detail, detected_at ` +
        `FROM ${keyspace}.reconciliation_errors WHERE job_id = ? LIMIT ?`,
    };
  }

  /** Writes the whole record (a run's row is rewritten when it finishes). */
  async saveJob(job: ReconciliationJobRecord): Promise<void> {
    await this.client.execute(
      this.cql.job,
      [
        job.jobId, job.trigger, job.mode, job.fix, job.status, job.startedAt, job.finishedAt ?? null,
        BigInt(job.usersChecked), BigInt(job.rowsChecked), BigInt(job.errors), BigInt(Math.round(job.durationMs)), job.summary,
      ],
      { prepare: true, isIdempotent: true },
    );
  }

  async getJob(jobId: string): Promise<ReconciliationJobRecord | undefined> {
    const result = await this.client.execute(this.cql.getJob, [jobId], READ);
    const row = result.first();
    if (row === null) return undefined;
    return {
      jobId: row['job_id'] as string,
      trigger: row['trigger'] as string,
      mode: row['mode'] as ReconciliationJobRecord['mode'],
      fix: row['fix'] as boolean,
      status: row['status'] as ReconciliationJobStatus,
      startedAt: row['started_at'] as Date,
      finishedAt: (row['finished_at'] as Date | null) ?? undefined,
      usersChecked: Number(row['users_checked'] as bigint),
      rowsChecked: Number(row['rows_checked'] as bigint),
      errors: Number(row['errors'] as bigint),
      durationMs: Number(row['duration_ms'] as bigint),
      summary: row['summary'] as string,
    };
  }

  /** Idempotent: a finding is keyed by (job, user, asset, shard, kind), so a rewrite replaces it. */
  async recordFindings(jobId: string, records: readonly FindingRecord[]): Promise<void> {
    const now = new Date();
    for (let i = 0; i < records.length; i += FINDINGS_PER_BATCH) {
      const queries = records.slice(i, i + FINDINGS_PER_BATCH).map(({ finding: f, fixed, detail }) => ({
        query: this.cql.finding,
        params: [
          jobId, f.userId ?? NO_USER_ID, f.assetId ?? NO_ASSET_ID, f.shard ?? NO_SHARD, f.kind,
          f.expectedAvailable ?? null, f.expectedLocked ?? null, f.actualAvailable ?? null, f.actualLocked ?? null,
          fixed, jsonWithBigints({ message: f.message, ...(f.version === undefined ? {} : { version: f.version }), ...detail }), now,
        ],
      }));
      // One partition (job_id): an unlogged batch is atomic there and costs no batch log.
      await this.client.batch(queries, { prepare: true, logged: false, isIdempotent: true });
    }
  }

  /** Findings of one run, in key order (user, asset, shard, kind). */
  async listFindings(jobId: string, limit = 10_000): Promise<StoredFinding[]> {
    const result = await this.client.execute(this.cql.listFindings, [jobId, limit], { ...READ, fetchSize: Math.min(limit, 5000) });
    const findings: StoredFinding[] = [];
    for await (const row of result) {
      const userId = row['user_id'] as bigint;
      const assetId = row['asset_id'] as number;
      const shard = row['shard'] as string;
      const detail = JSON.parse((row['detail'] as string | null) ?? '{}') as Record<string, unknown>;
      const version = detail['version'];
      findings.push({
        jobId: row['job_id'] as string,
        kind: row['kind'] as ReconcileFindingKind,
        userId: userId === NO_USER_ID ? undefined : userId,
        assetId: assetId === NO_ASSET_ID ? undefined : assetId,
        shard: shard === NO_SHARD ? undefined : shard,
        expectedAvailable: (row['expected_available'] as bigint | null) ?? undefined,
        expectedLocked: (row['expected_locked'] as bigint | null) ?? undefined,
        actualAvailable: (row['actual_available'] as bigint | null) ?? undefined,
        actualLocked: (row['actual_locked'] as bigint | null) ?? undefined,
        version: typeof version === 'string' ? BigInt(version) : undefined,
        message: typeof detail['message'] === 'string' ? detail['message'] : '',
        fixed: row['fixed'] as boolean,
        detail,
        detectedAt: row['detected_at'] as Date,
      });
    }
    return findings;
  }
}
