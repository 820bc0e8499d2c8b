/**
 * One reconciliation run: choose the users (a random sample, given users, or every user page by
 * page), verify each, fix what can be fixed, and in full mode check conservation, sequence gaps
 * and dead letters. Every run is recorded in reconciliation_jobs and every finding in
 * reconciliation_errors as it is found, so memory stays bounded by one page.
 */
import { randomBytes } from 'node:crypto';
import type { SettlementConfig } from '@settlement/config';
import {
  ConservationTally,
  MarketCatalog,
  ReconcileFindingKind,
  confirmFindings,
  correctionRows,
  deadLetterFinding,
  negativeBalanceFindings,
  findingKey,
  isBalanceError,
  isFixable,
  sequenceGapFinding,
  type ReconcileFinding,
  type ReconcileJobRequest,
  type ShardBalanceRow,
} from '@settlement/domain';
import {
  TOKEN_MAX,
  TOKEN_MIN,
  UNROUTED_SHARD,
  type DeadLetterRepository,
  type FindingRecord,
  type ReconciliationReader,
  type ReconciliationStore,
  type SequenceGapRepository,
} from '@settlement/scylla';
import type { Logger } from '@settlement/runtime';
import { mapBounded } from './bounded.js';
import type { CorrectionRow, CorrectionSender, SentCorrection } from './corrections.js';
import type { ReconcilerMetrics } from './metrics.js';
import { waitForCut } from './settlement-cut.js';
import { verifyBalance, verifyPage, type VerifiedUser } from './verify-balance.js';
import { resolveChanged, type ResolvedRequest } from './changed-run.js';
import type { ChangedUsers } from '@settlement/runtime';

export interface ReconcileDeps {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  readonly reader: ReconciliationReader;
  readonly store: ReconciliationStore;
  readonly gaps: SequenceGapRepository;
  readonly deadLetters: DeadLetterRepository;
  /** Required for runs with fix. */
  readonly corrections?: CorrectionSender | undefined;
  readonly metrics?: ReconcilerMetrics | undefined;
  /**
   * Last enqueued sequence per shard (the ingestor's hash in Redis). A negative balance is
   * re-checked once the shards have applied this much; without it, it is checked at once.
   */
  readonly enqueuedHeads?: (() => Promise<Map<string, bigint>>) | undefined;
  /** The users the settlers recorded as changed, per hour (for 'changed' runs); without it such a run is a full one. */
  readonly changedUsers?: Pick<ChangedUsers, 'between'> | undefined;
}

export interface ReconcileRunOptions {
  /** Id of the run in reconciliation_jobs (the BullMQ job id, or one made up by the caller). */
  readonly jobId: string;
  /** Who asked: scheduler, manual, cli, chaos, … */
  readonly trigger: string;
  /** When aborted, the run finishes the page it is on and stops, with status 'abandoned'. */
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((progress: ReconcileProgress) => Promise<void> | void) | undefined;
  /** Source of sample start tokens; crypto-random by default. */
  readonly randomToken?: (() => bigint) | undefined;
}

export interface ReconcileProgress {
  readonly phase: 'users' | 'system' | 'done';
  /** Estimated share done, 0-100. */
  readonly percent: number;
  readonly usersChecked: number;
  readonly rowsChecked: number;
  readonly errors: number;
  readonly warnings: number;
}

export type ReconcileRunStatus = 'completed' | 'abandoned' | 'failed';

/** What a run returns (the BullMQ job's return value) and stores as reconciliation_jobs.summary. JSON-safe. */
export interface ReconcileSummary {
  readonly jobId: string;
  readonly trigger: string;
  readonly mode: ReconcileJobRequest['mode'];
  readonly fix: boolean;
  readonly status: ReconcileRunStatus;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly usersChecked: number;
  readonly rowsChecked: number;
  readonly rowsPerSecond: number;
  /** Users that had a finding on the first read and were read again. */
  readonly rereadUsers: number;
  /** Balance errors (mismatch, missing row, negative balance, invalid history, conservation). */
  readonly errors: number;
  /** Sequence gaps and dead-letter shards: kept on purpose, reported for attention. */
  readonly warnings: number;
  /**
   * Negative balances seen while the shards were at different points that could not be
   * re-checked in time (the backlog did not drain within negative_cut_wait_ms): not counted.
   */
  readonly unconfirmedNegatives: number;
  readonly byKind: Readonly<Record<string, number>>;
  /** Findings a correction repaired (re-checked after the settler applied it). */
  readonly fixed: number;
  /** Fixable findings whose correction did not apply or did not repair the row. */
  readonly notFixed: number;
  readonly correctionJobs: number;
  /** Full mode only. */
  readonly conservation?: {
    readonly checked: boolean;
    readonly reason?: string;
    readonly assets: ReadonlyArray<{ assetId: number; available: string; locked: string; expected: string; ok: boolean }>;
  };
  /** The first findings, for a quick look; all are in reconciliation_errors. */
  readonly samples: ReadonlyArray<{ kind: string; userId?: string; assetId?: number; shard?: string; message: string }>;
  readonly error?: string;
}

const SAMPLES_MAX = 20;
/** 2^64: the width of the token ring, for progress. */
const RING = 2n ** 64n;

export function cryptoRandomToken(): bigint {
  return randomBytes(8).readBigInt64BE();
}

class RunTally {
  usersChecked = 0;
  rowsChecked = 0;
  rereadUsers = 0;
  unconfirmedNegatives = 0;
  errors = 0;
  warnings = 0;
  fixed = 0;
  notFixed = 0;
  correctionJobs = 0;
  readonly byKind: Record<string, number> = {};
  readonly samples: ReconcileSummary['samples'][number][] = [];

  addFindings(records: readonly FindingRecord[]): void {
    for (const { finding: f, fixed } of records) {
      this.byKind[f.kind] = (this.byKind[f.kind] ?? 0) + 1;
      if (isBalanceError(f.kind)) this.errors += 1;
      else this.warnings += 1;
      if (fixed) this.fixed += 1;
      else if (isFixable(f)) this.notFixed += 1;
      if (this.samples.length < SAMPLES_MAX) {
        this.samples.push({
          kind: f.kind,
          ...(f.userId === undefined ? {} : { userId: f.userId.toString() }),
          ...(f.assetId === undefined ? {} : { assetId: f.assetId }),
          ...(f.shard === undefined ? {} : { shard: f.shard }),
          message: f.message,
        });
      }
    }
  }

  progress(phase: ReconcileProgress['phase'], percent: number): ReconcileProgress {
    return { phase, percent: Math.min(100, Math.max(0, Math.round(percent * 10) / 10)), usersChecked: this.usersChecked, rowsChecked: this.rowsChecked, errors: this.errors, warnings: this.warnings };
  }
}

interface UserPage {
  readonly users: bigint[];
  /** Share of the run done after this page, 0-100. */
  readonly percentAfter: number;
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

async function* userPages(deps: ReconcileDeps, request: ResolvedRequest, randomToken: () => bigint): AsyncGenerator<UserPage> {
  const r = deps.config.reconciliation;
  if (request.mode === 'full') {
    // Token order over user_balances: each page continues after the last token of the one
    // before, so only one page of ids is held, and a page short of page_size is the last.
    // Users with history in the same token range but no balance row at all join the page.
    let after = TOKEN_MIN;
    for (;;) {
      const page = await deps.reader.usersAfterToken(after, r.page_size);
      const last = page.length < r.page_size;
      const upTo = last ? TOKEN_MAX : page[page.length - 1]!.token;
      const users = new Set(page.map((u) => u.userId));
      for (const userId of await deps.reader.historyUsersInRange(after, upTo, r.page_size)) users.add(userId);
      after = upTo;
      yield { users: [...users], percentAfter: last ? 100 : Number(((after - TOKEN_MIN) * 1000n) / RING) / 10 };
      if (last) return;
    }
  }
  const users =
    request.mode === 'users'
      ? [...new Set(request.userIds)]
      : await deps.reader.sampleUsers(request.size ?? r.sample_size, r.sample_ranges, randomToken);
  const pages = chunk(users, r.page_size);
  for (let i = 0; i < pages.length; i += 1) yield { users: pages[i]!, percentAfter: ((i + 1) * 100) / pages.length };
}

const isNegative = (f: ReconcileFinding) => f.kind === ReconcileFindingKind.NEGATIVE_BALANCE;

/**
 * Negative balances of a page, re-checked on a cut: once every shard has applied what was
 * enqueued when they were seen, the users' rows are read again and only negatives still there
 * count. Other findings are per row and version-consistent already.
 */
async function confirmNegatives(deps: ReconcileDeps, verified: VerifiedUser[], signal: AbortSignal | undefined, log: Logger): Promise<{ users: VerifiedUser[]; unconfirmed: number }> {
  const suspects = verified.filter((u) => u.findings.some(isNegative));
  if (suspects.length === 0 || deps.enqueuedHeads === undefined) return { users: verified, unconfirmed: 0 };
  const heads = await deps.enqueuedHeads();
  const reached = await waitForCut(deps.reader, heads, deps.config.reconciliation.negative_cut_wait_ms, signal);
  const reread = await mapBounded(suspects, deps.config.reconciliation.concurrency, (u) => deps.reader.userBalanceRows(u.userId));
  const rowsByUser = new Map(suspects.map((u, i) => [u.userId, reread[i]!]));
  let unconfirmed = 0;
  const users = verified.map((u) => {
    const rows = rowsByUser.get(u.userId);
    if (rows === undefined) return u;
    const confirmed = confirmFindings(u.findings.filter(isNegative), negativeBalanceFindings(u.userId, rows));
    if (!reached) {
      unconfirmed += confirmed.length;
      if (confirmed.length > 0) log.warn({ userId: u.userId, negatives: confirmed.length, heads: Object.fromEntries(heads) }, 'negative balance not confirmed: the shards did not reach the enqueued sequences in time');
    }
    return { ...u, findings: [...u.findings.filter((f) => !isNegative(f)), ...(reached ? confirmed : [])] };
  });
  return { users, unconfirmed };
}

function rowKey(userId: bigint, assetId: number | undefined, shard: string | undefined): string {
  return `${userId}/${assetId ?? '-'}/${shard ?? '-'}`;
}

/** fix_balance for one page: send corrections, wait for the settlers, re-check the users. */
async function fixPage(
  deps: ReconcileDeps,
  jobId: string,
  verified: readonly VerifiedUser[],
  signal: AbortSignal | undefined,
  log: Logger,
): Promise<{ records: FindingRecord[]; rowsByUser: Map<bigint, ShardBalanceRow[]>; correctionJobs: number }> {
  const catalog = new MarketCatalog(deps.config);
  const findingsByShard = new Map<string, ReconcileFinding[]>();
  for (const f of verified.flatMap((u) => u.findings.filter(isFixable))) {
    // A row of a shard no settler serves cannot be corrected; it stays reported.
    if (catalog.isShard(f.shard!)) findingsByShard.set(f.shard!, [...(findingsByShard.get(f.shard!) ?? []), f]);
  }
  const rowsByShard = new Map<string, CorrectionRow[]>([...findingsByShard].map(([shard, findings]) => [shard, correctionRows(findings)]));
  const rowsByUser = new Map<bigint, ShardBalanceRow[]>(verified.map((u) => [u.userId, u.rows]));
  if (rowsByShard.size === 0) {
    return { records: verified.flatMap((u) => u.findings.map((finding) => ({ finding, fixed: false, detail: unfixableDetail(finding, catalog) }))), rowsByUser, correctionJobs: 0 };
  }
  if (deps.corrections === undefined) throw new Error('a run with fix needs a correction sender (Redis)');

  const sent = await deps.corrections.apply(jobId, rowsByShard, deps.config.reconciliation.fix_wait_ms, signal);
  const sentByRow = new Map<string, { correction: SentCorrection; row: CorrectionRow }>();
  for (const correction of sent) {
    deps.metrics?.corrections.inc({ shard: correction.shard, outcome: correction.outcome });
    for (const row of correction.rows) sentByRow.set(rowKey(row.userId, row.assetId, correction.shard), { correction, row });
  }
  const corrected = verified.filter((u) => u.findings.some(isFixable));
  const recheck = new Map(
    (await mapBounded(corrected, deps.config.reconciliation.concurrency, (u) => verifyBalance(deps.reader, u.userId, deps.config.fee_account_user_id))).map((u) => [u.userId, u]),
  );
  const records: FindingRecord[] = [];
  for (const user of verified) {
    const after = recheck.get(user.userId);
    if (after === undefined) {
      records.push(...user.findings.map((finding) => ({ finding, fixed: false, detail: unfixableDetail(finding, catalog) })));
      continue;
    }
    rowsByUser.set(user.userId, after.rows);
    const remaining = new Set(after.findings.map(findingKey));
    // A fixed missing row could come back as a mismatch: the row is still wrong, whatever the kind.
    const wrongRows = new Set(after.findings.filter(isFixable).map((f) => rowKey(f.userId!, f.assetId, f.shard)));
    const allApplied = sent.filter((c) => c.rows.some((r) => r.userId === user.userId)).every((c) => c.outcome === 'completed');
    for (const finding of user.findings) {
      const sentRow = isFixable(finding) ? sentByRow.get(rowKey(finding.userId!, finding.assetId, finding.shard)) : undefined;
      if (sentRow === undefined && isFixable(finding)) {
        records.push({ finding, fixed: false, detail: unfixableDetail(finding, catalog) });
        continue;
      }
      const stillThere = remaining.has(findingKey(finding)) || (isFixable(finding) && wrongRows.has(rowKey(finding.userId!, finding.assetId, finding.shard)));
      const applied = sentRow === undefined ? allApplied : sentRow.correction.outcome === 'completed';
      const fixed = applied && !stillThere;
      const rowAfter = after.rows.find((r) => r.assetId === finding.assetId && r.shard === finding.shard);
      records.push({
        finding,
        fixed,
        detail: {
          fix:
            sentRow === undefined
              ? { resolvedBy: 'the corrections of this user', resolved: !stillThere }
              : {
                  correctionId: sentRow.correction.correctionId,
                  outcome: sentRow.correction.outcome,
                  availableDelta: sentRow.row.availableDelta,
                  lockedDelta: sentRow.row.lockedDelta,
                  before: { available: finding.actualAvailable ?? null, locked: finding.actualLocked ?? null, version: finding.version ?? null },
                  after: rowAfter === undefined ? null : { available: rowAfter.available, locked: rowAfter.locked, version: rowAfter.version },
                },
        },
      });
      if (isFixable(finding) && !fixed) {
        log.warn({ userId: finding.userId, assetId: finding.assetId, shard: finding.shard, outcome: sentRow?.correction.outcome }, 'correction did not repair the row');
      }
    }
  }
  return { records, rowsByUser, correctionJobs: sent.length };
}

function unfixableDetail(finding: ReconcileFinding, catalog: MarketCatalog): Record<string, unknown> | undefined {
  if (!isFixable(finding)) return undefined;
  if (!catalog.isShard(finding.shard!)) return { fix: { skipped: `shard ${finding.shard} is not configured: no settler applies corrections to it` } };
  return { fix: { skipped: 'not fixed' } };
}

async function systemFindings(deps: ReconcileDeps, conservation: ConservationTally, marksBefore: Map<string, bigint>) {
  const r = deps.config.reconciliation;
  const catalog = new MarketCatalog(deps.config);
  for await (const event of deps.reader.ledgerEvents()) conservation.addFundingEvent(event);
  const marksAfter = await deps.reader.shardWatermarks();
  const moved = [...new Set([...marksBefore.keys(), ...marksAfter.keys()])].filter((s) => marksBefore.get(s) !== marksAfter.get(s));
  const findings: ReconcileFinding[] = [];
  let reason: string | undefined;
  if (moved.length === 0) {
    findings.push(...conservation.findings());
  } else {
    // Balances read early and late in the run are from different moments; their sum proves nothing.
    reason = `settlement advanced during the run (${moved.map((s) => `${s}: ${marksBefore.get(s) ?? 0n} → ${marksAfter.get(s) ?? 0n}`).join(', ')})`;
  }
  for (const shard of [...catalog.shards, 'global']) {
    const gap = sequenceGapFinding(shard, await deps.gaps.list(shard, r.listed_per_shard_max), r.listed_per_shard_max);
    if (gap !== undefined) findings.push(gap);
  }
  for (const shard of [...catalog.shards, UNROUTED_SHARD]) {
    const dead = deadLetterFinding(shard, await deps.deadLetters.list(shard, r.listed_per_shard_max), r.listed_per_shard_max);
    if (dead !== undefined) findings.push(dead);
  }
  return {
    findings,
    conservation: {
      checked: moved.length === 0,
      ...(reason === undefined ? {} : { reason }),
      assets: conservation.assets().map((a) => ({ assetId: a.assetId, available: a.available.toString(), locked: a.locked.toString(), expected: a.expected.toString(), ok: a.ok })),
    },
  };
}

/** Runs one reconciliation to the end (or to the end of the current page when aborted). */
export async function runReconciliation(deps: ReconcileDeps, asked: ReconcileJobRequest, options: ReconcileRunOptions): Promise<ReconcileSummary> {
  const { jobId, trigger, signal } = options;
  const request = await resolveChanged(asked, deps.changedUsers, deps.config.reconciliation);
  if (asked.mode === 'changed') deps.logger.info({ jobId, resolvedTo: request.mode, users: request.mode === 'users' ? request.userIds.length : undefined }, 'changed users to check');
  const log = deps.logger.child({ jobId, mode: request.mode, fix: request.fix, trigger });
  const started = new Date();
  const t0 = performance.now();
  const tally = new RunTally();
  let status: ReconcileRunStatus = 'completed';
  let conservationSummary: ReconcileSummary['conservation'];
  let error: string | undefined;
  const base = { jobId, trigger, mode: request.mode, fix: request.fix, startedAt: started } as const;
  if (request.fix && deps.corrections === undefined) throw new Error('a run with fix needs a correction sender (Redis)');

  await deps.store.saveJob({ ...base, status: 'running', usersChecked: 0, rowsChecked: 0, errors: 0, durationMs: 0, summary: '{}' });
  log.info('reconciliation started');
  const progress = async (p: ReconcileProgress) => {
    try {
      await options.onProgress?.(p);
    } catch (err) {
      // Progress is for people watching; a failed update must not fail the run.
      log.warn({ err }, 'progress update failed');
    }
  };

  try {
    const conservation = request.mode === 'full' ? new ConservationTally() : undefined;
    const marksBefore = request.mode === 'full' ? await deps.reader.shardWatermarks() : new Map<string, bigint>();
    for await (const page of userPages(deps, request, options.randomToken ?? cryptoRandomToken)) {
      if (page.users.length > 0) {
        const r = deps.config.reconciliation;
        const checked = await verifyPage(deps.reader, page.users, { feeAccountUserId: deps.config.fee_account_user_id, concurrency: r.concurrency, confirmDelayMs: r.confirm_delay_ms, signal });
        const { users: verified, unconfirmed } = await confirmNegatives(deps, checked, signal, log);
        tally.unconfirmedNegatives += unconfirmed;
        let records: FindingRecord[];
        let rowsByUser = new Map<bigint, ShardBalanceRow[]>(verified.map((u) => [u.userId, u.rows]));
        if (request.fix && verified.some((u) => u.findings.length > 0)) {
          const fixed = await fixPage(deps, jobId, verified, signal, log);
          records = fixed.records;
          rowsByUser = fixed.rowsByUser;
          tally.correctionJobs += fixed.correctionJobs;
        } else {
          records = verified.flatMap((u) => u.findings.map((finding) => ({ finding, fixed: false })));
        }
        for (const rows of rowsByUser.values()) conservation?.addBalanceRows(rows);
        if (records.length > 0) await deps.store.recordFindings(jobId, records);
        tally.addFindings(records);
        tally.usersChecked += verified.length;
        tally.rowsChecked += verified.reduce((n, u) => n + u.rowsChecked, 0);
        tally.rereadUsers += verified.filter((u) => u.reread).length;
        deps.metrics?.usersChecked.inc(verified.length);
        deps.metrics?.rowsChecked.inc(verified.reduce((n, u) => n + u.rowsChecked, 0));
        for (const r of records) deps.metrics?.findings.inc({ kind: r.finding.kind });
      }
      await progress(tally.progress('users', request.mode === 'full' ? page.percentAfter * 0.95 : page.percentAfter));
      if (signal?.aborted) {
        status = 'abandoned';
        log.warn({ usersChecked: tally.usersChecked }, 'reconciliation abandoned after a complete page (shutting down)');
        break;
      }
    }
    if (conservation !== undefined && status === 'completed') {
      await progress(tally.progress('system', 95));
      const system = await systemFindings(deps, conservation, marksBefore);
      const records = system.findings.map((finding) => ({ finding, fixed: false }));
      if (records.length > 0) await deps.store.recordFindings(jobId, records);
      tally.addFindings(records);
      for (const r of records) deps.metrics?.findings.inc({ kind: r.finding.kind });
      conservationSummary = system.conservation;
    }
  } catch (err) {
    status = 'failed';
    error = (err as Error).message;
    log.error({ err }, 'reconciliation failed');
  }

  const finished = new Date();
  const durationMs = Math.round(performance.now() - t0);
  const summary: ReconcileSummary = {
    jobId,
    trigger,
    mode: request.mode,
    fix: request.fix,
    status,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs,
    usersChecked: tally.usersChecked,
    rowsChecked: tally.rowsChecked,
    rowsPerSecond: durationMs > 0 ? Math.round((tally.rowsChecked * 1000) / durationMs) : tally.rowsChecked,
    rereadUsers: tally.rereadUsers,
    unconfirmedNegatives: tally.unconfirmedNegatives,
    errors: tally.errors,
    warnings: tally.warnings,
    byKind: tally.byKind,
    fixed: tally.fixed,
    notFixed: tally.notFixed,
    correctionJobs: tally.correctionJobs,
    ...(conservationSummary === undefined ? {} : { conservation: conservationSummary }),
    samples: tally.samples,
    ...(error === undefined ? {} : { error }),
  };
  await deps.store.saveJob({
    ...base,
    status,
    finishedAt: finished,
    usersChecked: tally.usersChecked,
    rowsChecked: tally.rowsChecked,
    errors: tally.errors,
    durationMs,
    summary: JSON.stringify(summary),
  });
  deps.metrics?.runs.inc({ mode: request.mode, status });
  deps.metrics?.runDurationSeconds.observe({ mode: request.mode }, durationMs / 1000);
  if (status !== 'failed') {
    deps.metrics?.lastRunErrors.set({ mode: request.mode }, tally.errors);
    deps.metrics?.lastRunFinishedSeconds.set({ mode: request.mode }, finished.getTime() / 1000);
  }
  await progress(tally.progress('done', 100));
  // The child logger already carries jobId, mode, fix and trigger.
  const { samples: _samples, jobId: _jobId, trigger: _trigger, mode: _mode, fix: _fix, ...line } = summary;
  log[status === 'completed' && tally.errors === 0 ? 'info' : 'warn'](line, 'reconciliation finished');
  if (status === 'failed') throw new Error(`reconciliation ${jobId} failed: ${error}`);
  return summary;
}
