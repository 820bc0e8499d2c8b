/**
 * The chaos run's wait for the end: every shard's stored watermark at the last sequence the
 * simulator sent for it, or a stall (a halted shard never moves again), or the time is up.
 */
import type cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import { FUNDING_SHARD, type MarketCatalog } from '@settlement/domain';
import type { ExpectedResult } from '@settlement/simulator';
import type { ChaosCheck } from './chaos-types.js';
import { sleep } from './chaos-wait.js';

export interface SettleWaitOptions {
  /** Longest wait, ms. */
  readonly settleTimeoutMs: number;
  /** The wait ends early when no shard's watermark moved for this long, ms. */
  readonly stallTimeoutMs: number;
  /** Since the stream started, ms. */
  readonly sinceStreamMs: () => number;
  readonly log: Logger;
}

export interface SettleWait {
  /** Shard → the last sequence the simulator sent for it. */
  readonly wantLast: ReadonlyMap<string, bigint>;
  /** "shard at have/want" for each shard short of its last sequence; empty when all settled. */
  readonly lagging: readonly string[];
  /** The wait ended because nothing moved for `stallTimeoutMs`. */
  readonly stalled: boolean;
  /** Stream start until every shard settled, ms; NaN when they did not. */
  readonly settledMs: number;
  readonly stallTimeoutMs: number;
}

/** Each shard's last sequence in the simulator's stream: the watermark it must reach. */
function lastSequences(expected: ExpectedResult, catalog: MarketCatalog): Map<string, bigint> {
  const wantLast = new Map<string, bigint>([...catalog.markets.keys()].map((s) => [s, BigInt(expected.lastSequences.bySymbol[s] ?? '0')]));
  wantLast.set(FUNDING_SHARD, BigInt(expected.lastSequences.funding));
  return wantLast;
}

/** Polls the stored watermarks every 250 ms until every shard settled, nothing moves or the time is up. */
export async function waitUntilSettled(client: cassandra.Client, expected: ExpectedResult, catalog: MarketCatalog, options: SettleWaitOptions): Promise<SettleWait> {
  const { log, stallTimeoutMs: stallMs } = options;
  const wantLast = lastSequences(expected, catalog);
  const deadline = Date.now() + options.settleTimeoutMs;
  let settledMs = Number.NaN;
  let lagging: string[] = [];
  let nextProgress = 0;
  let lastSum = -1n;
  let movedAt = Date.now();
  let stalled = false;
  while (Date.now() < deadline) {
    const rows = (await client.execute('SELECT shard, last_seq FROM chaos.shard_watermarks', [], { prepare: true })).rows;
    const have = new Map(rows.map((r) => [r['shard'] as string, r['last_seq'] as bigint]));
    lagging = [...wantLast].filter(([shard, seq]) => (have.get(shard) ?? 0n) < seq).map(([shard, seq]) => `${shard} at ${have.get(shard) ?? 0n}/${seq}`);
    if (lagging.length === 0) {
      settledMs = options.sinceStreamMs();
      break;
    }
    // A halted shard never moves again: stop waiting once nothing moved for a while.
    const sum = [...have.values()].reduce((a, b) => a + b, 0n);
    if (sum !== lastSum) {
      lastSum = sum;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) {
      stalled = true;
      break;
    }
    if (Date.now() >= nextProgress) {
      log.info({ lagging }, 'waiting for the shards to settle');
      nextProgress = Date.now() + 5000;
    }
    await sleep(250);
  }
  return { wantLast, lagging, stalled, settledMs, stallTimeoutMs: stallMs };
}

/** The first end check: every shard reached its last sequence. */
export function settledCheck(wait: SettleWait): ChaosCheck {
  const { lagging, stalled, wantLast } = wait;
  return {
    name: 'every shard settled to its last sequence',
    ok: lagging.length === 0,
    detail: lagging.length === 0 ? `all ${wantLast.size} shards` : `lagging: ${lagging.join(', ')}${stalled ? ` (no progress for ${wait.stallTimeoutMs / 1000} s)` : ''}`,
  };
}
