/**
 * The checks of a full run that are not per user, after every page: conservation of each asset
 * (balances against funding events), sequence gaps and dead letters per shard.
 */
import { ConservationTally, MarketCatalog, deadLetterFinding, sequenceGapFinding, type ReconcileFinding } from '@settlement/domain';
import { UNROUTED_SHARD } from '@settlement/scylla';
import type { ReconcileDeps } from './run-deps.js';
import type { ConservationSummary } from './run-summary.js';

/**
 * `conservation` holds the balance rows of every page; `marksBefore` are the shard watermarks
 * read before the first page.
 */
export async function systemFindings(
  deps: ReconcileDeps,
  conservation: ConservationTally,
  marksBefore: Map<string, bigint>,
): Promise<{ findings: ReconcileFinding[]; conservation: ConservationSummary }> {
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
