/**
 * What a reconciliation found, as the CLI (`settle reconcile-status`) and the dashboard show it:
 * one view per row of reconciliation_errors, with the asset's code, the expected (recomputed
 * from history) and the stored amounts in minor units, and their difference.
 */
import { isBalanceError, type MarketCatalog, type ReconcileFindingKind } from '@settlement/domain';
import type { ReconciliationStore, StoredFinding } from '@settlement/scylla';
import { formatMinorUnits } from './amounts.js';

/** Findings read per run unless asked otherwise. */
export const FINDINGS_LISTED_DEFAULT = 1_000;

export interface AmountPair {
  readonly available: bigint;
  readonly frozen: bigint;
}

export interface DisplayPair {
  readonly available: string;
  readonly frozen: string;
}

export interface FindingView {
  readonly kind: ReconcileFindingKind;
  /** A balance error (true) or a warning such as a dead letter or a sequence gap (false). */
  readonly error: boolean;
  /** Absent for findings about the whole system (conservation, gaps, dead letters). */
  readonly userId: bigint | null;
  readonly assetId: number | null;
  /** Asset code from config, "#<id>" for one no longer configured, null for none. */
  readonly asset: string | null;
  /** null: the finding is a total over the user's (or every user's) shards. */
  readonly shard: string | null;
  /** What the history says (conservation: deposits − withdrawals). Minor units. */
  readonly expected: AmountPair | null;
  /** What is stored (conservation: the sum over every account). Minor units. */
  readonly stored: AmountPair | null;
  /** stored − expected, where both are known. */
  readonly difference: AmountPair | null;
  /** expected / stored / difference in whole units, e.g. "1.50000000". */
  readonly display: { readonly expected: DisplayPair | null; readonly stored: DisplayPair | null; readonly difference: DisplayPair | null } | null;
  /** The stored row's version (last applied sequence), for row findings. */
  readonly version: bigint | null;
  /** A correction was applied and a re-check found the row right. */
  readonly fixed: boolean;
  readonly message: string;
  readonly detectedAt: Date;
}

function pair(available: bigint | undefined, frozen: bigint | undefined): AmountPair | null {
  if (available === undefined && frozen === undefined) return null;
  return { available: available ?? 0n, frozen: frozen ?? 0n };
}

export function findingView(f: StoredFinding, catalog: MarketCatalog): FindingView {
  const asset = f.assetId === undefined ? undefined : catalog.assets.get(f.assetId);
  const expected = pair(f.expectedAvailable, f.expectedLocked);
  const stored = pair(f.actualAvailable, f.actualLocked);
  const difference =
    expected !== null && stored !== null ? { available: stored.available - expected.available, frozen: stored.frozen - expected.frozen } : null;
  const decimals = asset?.decimals;
  const format = (p: AmountPair | null, d: number): DisplayPair | null =>
    p === null ? null : { available: formatMinorUnits(p.available, d), frozen: formatMinorUnits(p.frozen, d) };
  return {
    kind: f.kind,
    error: isBalanceError(f.kind),
    userId: f.userId ?? null,
    assetId: f.assetId ?? null,
    asset: f.assetId === undefined ? null : (asset?.code ?? `#${f.assetId}`),
    shard: f.shard ?? null,
    expected,
    stored,
    difference,
    display: decimals === undefined ? null : { expected: format(expected, decimals), stored: format(stored, decimals), difference: format(difference, decimals) },
    version: f.version ?? null,
    fixed: f.fixed,
    message: f.message,
    detectedAt: f.detectedAt,
  };
}

export interface FindingList {
  readonly findings: FindingView[];
  /** More rows are stored than were read (`limit`). */
  readonly truncated: boolean;
}

/** Balance errors first, then warnings; within each, in key order (user, asset, shard, kind). */
export async function listFindingViews(store: ReconciliationStore, catalog: MarketCatalog, jobId: string, limit = FINDINGS_LISTED_DEFAULT): Promise<FindingList> {
  const stored = await store.listFindings(jobId, limit + 1);
  const views = stored.slice(0, limit).map((f) => findingView(f, catalog));
  views.sort((a, b) => Number(b.error) - Number(a.error));
  return { findings: views, truncated: stored.length > limit };
}
