/**
 * One reconciliation run: choose the users (a random sample, given users, or every user page by
 * page), verify each, fix what can be fixed, and in full mode check conservation, sequence gaps
 * and dead letters. Every run is recorded in reconciliation_jobs and every finding in
 * reconciliation_errors as it is found, so memory stays bounded by one page.
 *
 * This file is the order of the phases; each phase is a module of its own:
 * user-pages (which users, page by page) → check-page (verify-balance, confirm-negatives,
 * fix-page) → system-findings (full runs) → run-record, run-metrics, run-progress, run-summary.
 */
import { ConservationTally, type ReconcileJobRequest } from '@settlement/domain';
import { resolveChanged } from './changed-run.js';
import { checkPage, type PageRun } from './check-page.js';
import type { ReconcileDeps, ReconcileRunOptions } from './run-deps.js';
import { observeRun } from './run-metrics.js';
import { progressReporter } from './run-progress.js';
import { recordFindings, saveRunFinished, saveRunStarted, type RunKey } from './run-record.js';
import { summarize, type ReconcileRunStatus, type ReconcileSummary } from './run-summary.js';
import { RunTally } from './run-tally.js';
import { systemFindings } from './system-findings.js';
import { cryptoRandomToken, userPages } from './user-pages.js';

export type { ReconcileDeps, ReconcileRunOptions } from './run-deps.js';
export type { ReconcileProgress } from './run-progress.js';
export type { ReconcileRunStatus, ReconcileSummary } from './run-summary.js';
export { cryptoRandomToken } from './user-pages.js';

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
  const key: RunKey = { jobId, trigger, mode: request.mode, fix: request.fix, startedAt: started };
  if (request.fix && deps.corrections === undefined) throw new Error('a run with fix needs a correction sender (Redis)');

  await saveRunStarted(deps.store, key);
  log.info('reconciliation started');
  const progress = progressReporter(options.onProgress, log);

  try {
    const conservation = request.mode === 'full' ? new ConservationTally() : undefined;
    const marksBefore = request.mode === 'full' ? await deps.reader.shardWatermarks() : new Map<string, bigint>();
    const pageRun: PageRun = { deps, jobId, fix: request.fix, signal, log, tally, conservation };
    for await (const page of userPages(deps, request, options.randomToken ?? cryptoRandomToken)) {
      if (page.users.length > 0) await checkPage(pageRun, page.users);
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
      await recordFindings(deps, jobId, tally, system.findings.map((finding) => ({ finding, fixed: false })));
      conservationSummary = system.conservation;
    }
  } catch (err) {
    status = 'failed';
    error = (err as Error).message;
    log.error({ err }, 'reconciliation failed');
  }

  const finished = new Date();
  const durationMs = Math.round(performance.now() - t0);
  const summary = summarize({ jobId, trigger, mode: request.mode, fix: request.fix, status, started, finished, durationMs, conservation: conservationSummary, error }, tally);
  await saveRunFinished(deps.store, key, summary, finished);
  observeRun(deps.metrics, summary, finished);
  await progress(tally.progress('done', 100));
  // The child logger already carries jobId, mode, fix and trigger.
  const { samples: _samples, jobId: _jobId, trigger: _trigger, mode: _mode, fix: _fix, ...line } = summary;
  log[status === 'completed' && tally.errors === 0 ? 'info' : 'warn'](line, 'reconciliation finished');
  if (status === 'failed') throw new Error(`reconciliation ${jobId} failed: ${error}`);
  return summary;
}
