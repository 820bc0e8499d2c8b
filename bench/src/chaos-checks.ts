/**
 * The chaos run's end checks, once the stream is sent and the shards settled (or gave up): the
 * stores hold exactly what the simulator expects, nothing failed, a full reconciliation agrees,
 * and every process lived through the faults and stops cleanly. The order of the checks is the
 * report's (chaos.int.test.ts relies on it).
 */
import type { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import type { SettlementConfig } from '@settlement/config';
import { reconcileOnce } from '@settlement/reconciler';
import { BalanceRepository, u64FromCql } from '@settlement/scylla';
import type { ExpectedResult, Simulator } from '@settlement/simulator';
import { checkBalances } from './check-balances.js';
import { deadLetterChecks, type DeadLetterCheckInput } from './chaos-dead-letters.js';
import { allRows } from './chaos-rows.js';
import { settledCheck, type SettleWait } from './chaos-settle-wait.js';
import type { Supervised } from './chaos-supervisor.js';
import type { ChaosCheck, ProcessExit } from './chaos-types.js';

/** Every balance equals the expectation, and conservation holds per asset. */
async function balanceChecks(client: cassandra.Client, expected: ExpectedResult): Promise<ChaosCheck[]> {
  const balances = new BalanceRepository(client, 'chaos');
  const { checked, mismatches, conservationBroken } = await checkBalances(balances, expected);
  return [
    { name: 'every balance equals the expectation', ok: mismatches.length === 0, detail: `${checked} balances, ${mismatches.length} mismatches${mismatches.length ? `: ${mismatches.slice(0, 5).join('; ')}` : ''}` },
    { name: 'conservation per asset', ok: conservationBroken.length === 0, detail: conservationBroken.length === 0 ? `${Object.keys(expected.totals).length} assets: sum = deposits − withdrawals` : `broken for assets ${conservationBroken.join(', ')}` },
  ];
}

/**
 * Every trade settled exactly once: the trade tables hold exactly the simulator's trade ids (a
 * trade applied twice would also show in the balances). Also returns how many trades the stream
 * holds.
 */
async function tradeCheck(client: cassandra.Client, messages: Simulator['messages']): Promise<{ check: ChaosCheck; trades: number }> {
  const wantTrades = new Map<string, Set<string>>();
  const seqOfTrade = new Map<string, bigint>();
  for (const m of messages) {
    if (m.kind !== 'trade') continue;
    const id = /"trade_id":(\d+)/.exec(m.head)?.[1];
    if (id === undefined) throw new Error('simulator trade without trade_id');
    let set = wantTrades.get(m.shard);
    if (set === undefined) wantTrades.set(m.shard, (set = new Set()));
    set.add(id);
    seqOfTrade.set(`${m.shard}:${id}`, m.seq);
  }
  const tradeProblems: string[] = [];
  let tradesFound = 0;
  for (const [symbol, want] of wantTrades) {
    const seen = new Set<string>();
    for (const row of await allRows(client, `SELECT trade_id FROM chaos.settled_trades_${symbol}`, [])) {
      seen.add(u64FromCql(row['trade_id'] as bigint).toString());
    }
    tradesFound += seen.size;
    const missing = [...want].filter((id) => !seen.has(id));
    const extra = [...seen].filter((id) => !want.has(id));
    // The sequences of the missing trades say which job lost them (its id names its range).
    const missingSeqs = missing.map((id) => seqOfTrade.get(`${symbol}:${id}`)!).sort((a, b) => (a < b ? -1 : 1));
    const where = missingSeqs.length > 0 ? ` (seqs ${missingSeqs.slice(0, 20).join(', ')}${missingSeqs.length > 20 ? ', …' : ''})` : '';
    if (missing.length || extra.length) tradeProblems.push(`${symbol}: ${missing.length} missing${where}, ${extra.length} unexpected`);
  }
  return {
    check: { name: 'every trade settled, none unexpected', ok: tradeProblems.length === 0, detail: tradeProblems.length ? tradeProblems.join('; ') : `${tradesFound} trades` },
    trades: [...wantTrades.values()].reduce((s, set) => s + set.size, 0),
  };
}

/** A failed settlement job is a hole in its shard's chain: there must be none. */
async function failedJobsCheck(queues: readonly Queue[]): Promise<ChaosCheck> {
  const failedJobs: string[] = [];
  for (const queue of queues) {
    const failed = await queue.getFailed(0, 9);
    for (const job of failed) failedJobs.push(`${job.id}: ${job.failedReason}`);
  }
  return { name: 'no settlement job failed', ok: failedJobs.length === 0, detail: failedJobs.length === 0 ? `${queues.length} queues` : failedJobs.slice(0, 5).join('; ') };
}

/** A full reconciliation finds nothing. */
async function reconciliationCheck(config: Readonly<SettlementConfig>, log: Logger): Promise<ChaosCheck> {
  const reconciliation = await reconcileOnce({ config, logger: log, request: { mode: 'full', fix: false, trigger: 'chaos' } });
  return {
    name: 'full reconciliation finds 0 errors',
    ok: reconciliation.errors === 0 && reconciliation.status === 'completed',
    detail: `${reconciliation.usersChecked} users, ${reconciliation.rowsChecked} rows, ${reconciliation.errors} errors (${JSON.stringify(reconciliation.byKind)}), status ${reconciliation.status}`,
  };
}

export interface StoreCheckInput extends DeadLetterCheckInput {
  readonly settled: SettleWait;
  readonly simulator: Simulator;
  readonly queues: readonly Queue[];
  readonly log: Logger;
}

/**
 * The checks of what the stores hold, in the report's order: settled, balances, conservation,
 * trades, dead letters, failed jobs, reconciliation. Also returns the stream's trade count.
 */
export async function storeChecks(input: StoreCheckInput): Promise<{ checks: ChaosCheck[]; trades: number }> {
  const checks: ChaosCheck[] = [settledCheck(input.settled)];
  checks.push(...(await balanceChecks(input.client, input.expected)));
  const trades = await tradeCheck(input.client, input.simulator.messages);
  checks.push(trades.check);
  checks.push(...(await deadLetterChecks(input)));
  checks.push(await failedJobsCheck(input.queues));
  checks.push(await reconciliationCheck(input.config, input.log));
  return { checks, trades: trades.trades };
}

/**
 * Stops every process with SIGTERM, then checks that each lived through the faults (none died
 * by itself) and stopped cleanly.
 */
export async function stopAndCheckProcesses(apps: readonly Supervised[]): Promise<{ checks: ChaosCheck[]; unexpectedExits: ProcessExit[] }> {
  await Promise.all(apps.map((a) => a.stop(20_000)));
  const unexpectedExits = apps.flatMap((a) => a.unexpectedExits);
  const unclean = apps.filter((a) => a.finalExit !== 0);
  const checks: ChaosCheck[] = [
    {
      name: 'no process exited by itself',
      ok: unexpectedExits.length === 0,
      detail: unexpectedExits.length === 0 ? `${apps.length} processes` : unexpectedExits.map((e) => `${e.name} (code ${e.code}) at ${Math.round(e.atMs / 1000)} s`).join(', '),
    },
    {
      name: 'every process stopped cleanly on SIGTERM',
      ok: unclean.length === 0,
      detail: unclean.length === 0 ? 'exit 0 each' : unclean.map((a) => `${a.name}: ${typeof a.finalExit === 'string' ? a.finalExit : `exit ${a.finalExit}`}`).join(', '),
    },
  ];
  return { checks, unexpectedExits };
}
