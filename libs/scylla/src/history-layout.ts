/**
 * The keyspace's history layout (schema/007_history_buckets.cql): the bucket width, fixed when
 * the keyspace is created (history_layout), and whether the pre-bucket tables have been copied
 * into the bucketed ones (history_migration 'history_buckets'). Until that is done the settlers
 * write both layouts and every reader reads the old one; after, the bucketed one.
 */
import type cassandra from 'cassandra-driver';
import { DEFAULT_HISTORY_BUCKET_SEQS } from '@settlement/domain';

const LAYOUT = 'history';
const MIGRATION = 'history_buckets';
/** How long a reader trusts the flag it read, ms. */
export const HISTORY_FLAG_TTL_MS = 10_000;
/** How often a settler reads the flag again, ms. */
export const HISTORY_MODE_REFRESH_MS = 60_000;
/**
 * A settler keeps writing the old tables this long after the backfill was marked done: readers
 * that cached "not done" (HISTORY_FLAG_TTL_MS) still read them meanwhile.
 */
export const DUAL_WRITE_GRACE_MS = 3 * HISTORY_FLAG_TTL_MS;

export interface HistoryMigrationState {
  readonly done: boolean;
  readonly doneAt: Date | undefined;
  /** Opaque position of the backfill (JSON), undefined before its first page. */
  readonly position: string | undefined;
  readonly rowsCopied: bigint;
  readonly startedAt: Date | undefined;
}

/** How a writer writes history rows. */
export interface HistoryWriteMode {
  readonly bucketSeqs: bigint;
  /** Also write trades_by_user / ledger_events_by_user (the backfill is not done). */
  readonly dualWrite: boolean;
}

const READ = { prepare: true, isIdempotent: true } as const;

export class HistoryLayoutRepository {
  private readonly cql: Readonly<Record<'layout' | 'initLayout' | 'state' | 'initState' | 'progress' | 'done' | 'reset' | 'oldTrade' | 'oldLedger', string>>;

  constructor(private readonly client: cassandra.Client, keyspace: string) {
    this.cql = {
      layout: `SELECT bucket_seqs FROM ${keyspace}.history_layout WHERE name = ?`,
      initLayout: `INSERT INTO ${keyspace}.history_layout (name, bucket_seqs, created_at) VALUES (?, ?, ?)`,
      state: `SELECT done, done_at, position, rows_copied, started_at FROM ${keyspace}.history_migration WHERE name = ?`,
      initState: `INSERT INTO ${keyspace}.history_migration (name, done, rows_copied, started_at, updated_at, done_at) VALUES (?, ?, ?, ?, ?, ?)`,
      progress: `UPDATE ${keyspace}.history_migration SET position = ?, rows_copied = ?, started_at = ?, updated_at = ? WHERE name = ?`,
      done: `UPDATE ${keyspace}.history_migration SET done = true, position = ?, rows_copied = ?, updated_at = ?, done_at = ? WHERE name = ?`,
      reset: `UPDATE ${keyspace}.history_migration SET done = false, position = null, rows_copied = 0, started_at = null, updated_at = ?, done_at = null WHERE name = ?`,
      oldTrade: `SELECT user_id FROM ${keyspace}.trades_by_user LIMIT 1`,
      oldLedger: `SELECT user_id FROM ${keyspace}.ledger_events_by_user LIMIT 1`,
    };
  }

  /** The keyspace's bucket width; undefined before ensure(). */
  async bucketSeqs(): Promise<bigint | undefined> {
    const row = (await this.client.execute(this.cql.layout, [LAYOUT], READ)).first();
    return (row?.['bucket_seqs'] as bigint | null | undefined) ?? undefined;
  }

  /**
   * Records the bucket width (`configured`, the first time only: a later value is ignored, as
   * changing it would leave rows where no writer looks for them again) and the backfill's
   * state: done at once when the old tables are empty (a new keyspace never writes them).
   * Idempotent: each row is written only when absent. (No lightweight transaction: those need a
   * quorum of replicas, which a keyspace can lack while migrating; run one migration at a time.)
   */
  async ensure(configured: bigint = DEFAULT_HISTORY_BUCKET_SEQS, log?: (message: string, fields?: Record<string, unknown>) => void): Promise<{ bucketSeqs: bigint; state: HistoryMigrationState }> {
    let bucketSeqs = await this.bucketSeqs();
    if (bucketSeqs === undefined) {
      await this.client.execute(this.cql.initLayout, [LAYOUT, configured, new Date()], { prepare: true });
      bucketSeqs = (await this.bucketSeqs()) ?? configured;
    }
    if (bucketSeqs !== configured) {
      log?.('scylladb.history_bucket_seqs differs from the keyspace\'s bucket width, which is kept (changing it would orphan history rows)', { configured: configured.toString(), keyspace: bucketSeqs.toString() });
    }
    let state = await this.state();
    if (state === undefined) {
      const empty = (await this.client.execute(this.cql.oldTrade, [], READ)).rows.length === 0 && (await this.client.execute(this.cql.oldLedger, [], READ)).rows.length === 0;
      const now = new Date();
      // No done_at for a keyspace that never had pre-bucket history: there is no reader that
      // cached "not done", so no grace of dual writes either (dualWriteOf).
      await this.client.execute(this.cql.initState, [MIGRATION, empty, 0n, now, now, null], { prepare: true });
      state = (await this.state())!;
      log?.(state.done ? 'history: bucketed layout only (no pre-bucket history)' : 'history: pre-bucket history found; run `settle migrate-history`', {});
    }
    return { bucketSeqs, state };
  }

  async state(): Promise<HistoryMigrationState | undefined> {
    const row = (await this.client.execute(this.cql.state, [MIGRATION], READ)).first();
    if (row === null) return undefined;
    return {
      done: row['done'] === true,
      doneAt: (row['done_at'] as Date | null) ?? undefined,
      position: (row['position'] as string | null) ?? undefined,
      rowsCopied: (row['rows_copied'] as bigint | null) ?? 0n,
      startedAt: (row['started_at'] as Date | null) ?? undefined,
    };
  }

  /**
   * Whether readers use the bucketed tables. A missing row is written again first (see
   * stateOrRecreated): the old tables are complete only where the row says so.
   */
  async bucketedReads(): Promise<boolean> {
    return (await this.stateOrRecreated()).done;
  }

  /**
   * The backfill's state; when its row is missing, the rows ensure() writes are written again
   * first. The rows the migration writes are lost with the unsynced tail of a node's commit log
   * (periodic sync) if it is killed within seconds of the migration: without them every reader
   * took the old tables for the complete ones and the settlers wrote both layouts, while the
   * settlers started before the loss went on writing the bucketed tables alone (chaos run, 4 Dec,
   * seed 1401: Cassandra killed 0.4 s into the stream, the reconciliation then found 2,959 rows
   * whose history, read from the old tables, fell short of the balance).
   */
  private async stateOrRecreated(fallbackBucketSeqs: bigint = DEFAULT_HISTORY_BUCKET_SEQS): Promise<HistoryMigrationState> {
    return (await this.state()) ?? (await this.ensure(fallbackBucketSeqs)).state;
  }

  async saveProgress(position: string, rowsCopied: bigint, startedAt: Date): Promise<void> {
    await this.client.execute(this.cql.progress, [position, rowsCopied, startedAt, new Date(), MIGRATION], READ);
  }

  async markDone(position: string, rowsCopied: bigint): Promise<void> {
    const now = new Date();
    await this.client.execute(this.cql.done, [position, rowsCopied, now, now, MIGRATION], READ);
  }

  /** Starts the backfill over (`--restart`); refused by the caller once it is done. */
  async reset(): Promise<void> {
    await this.client.execute(this.cql.reset, [new Date(), MIGRATION], READ);
  }

  /** The settler's write mode now: dual until the backfill is done, and DUAL_WRITE_GRACE_MS after. */
  async writeMode(fallbackBucketSeqs: bigint, nowMs = Date.now()): Promise<HistoryWriteMode> {
    const state = await this.stateOrRecreated(fallbackBucketSeqs);
    const bucketSeqs = await this.bucketSeqs();
    return { bucketSeqs: bucketSeqs ?? fallbackBucketSeqs, dualWrite: dualWriteOf(state, nowMs) };
  }
}

export function dualWriteOf(state: HistoryMigrationState | undefined, nowMs: number): boolean {
  if (state === undefined || !state.done) return true;
  return state.doneAt !== undefined && nowMs < state.doneAt.getTime() + DUAL_WRITE_GRACE_MS;
}

/** "Do readers use the bucketed tables?", read at most every `ttlMs`. Once true it stays true. */
export class HistoryLayoutFlag {
  private value: boolean | undefined;
  private readAtMs = 0;
  private pending: Promise<boolean> | undefined;

  constructor(
    private readonly layout: HistoryLayoutRepository,
    private readonly ttlMs = HISTORY_FLAG_TTL_MS,
  ) {}

  async bucketed(): Promise<boolean> {
    if (this.value === true || (this.value !== undefined && Date.now() - this.readAtMs < this.ttlMs)) return this.value;
    this.pending ??= this.layout
      .bucketedReads()
      .then((v) => {
        this.value = v;
        this.readAtMs = Date.now();
        return v;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }
}
