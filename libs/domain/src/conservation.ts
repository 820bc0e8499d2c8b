/**
 * Conservation per asset, the other half of a reconciliation (reconcile.ts checks each user's
 * rows against their history): the sum over every account (fee account included) of available
 * + locked must equal deposits − withdrawals. Pure: apps/reconciler feeds it every stored
 * balance row and every funding event it pages through.
 */
import { fundingEffects, supplyChange } from './effects.js';
import { FundingEventType } from './messages.js';
import { FUNDING_EVENT_TYPES, ReconcileFindingKind, type FundingHistoryRow, type ReconcileFinding, type ShardBalanceRow } from './reconcile.js';

export class ConservationTally {
  private readonly balances = new Map<number, { available: bigint; locked: bigint }>();
  private readonly supply = new Map<number, bigint>();
  private invalidEvents = 0;

  addBalanceRows(rows: readonly Pick<ShardBalanceRow, 'assetId' | 'available' | 'locked'>[]): void {
    for (const row of rows) {
      const sum = this.balances.get(row.assetId) ?? { available: 0n, locked: 0n };
      this.balances.set(row.assetId, { available: sum.available + row.available, locked: sum.locked + row.locked });
    }
  }

  addFundingEvent(event: Pick<FundingHistoryRow, 'eventType' | 'amount' | 'currency'>): void {
    if (!FUNDING_EVENT_TYPES.has(event.eventType)) {
      this.invalidEvents += 1;
      return;
    }
    const change = supplyChange(fundingEffects({ userId: 0n, eventType: event.eventType as FundingEventType, amount: event.amount, currency: event.currency }));
    for (const [assetId, delta] of change) this.supply.set(assetId, (this.supply.get(assetId) ?? 0n) + delta);
  }

  /** Per asset: the totals, and whether they agree. */
  assets(): ConservationAsset[] {
    const ids = [...new Set([...this.balances.keys(), ...this.supply.keys()])].sort((a, b) => a - b);
    return ids.map((assetId) => {
      const b = this.balances.get(assetId) ?? { available: 0n, locked: 0n };
      const expected = this.supply.get(assetId) ?? 0n;
      return { assetId, available: b.available, locked: b.locked, expected, ok: b.available + b.locked === expected };
    });
  }

  findings(): ReconcileFinding[] {
    const findings: ReconcileFinding[] = this.assets()
      .filter((a) => !a.ok)
      .map((a) => ({
        kind: ReconcileFindingKind.CONSERVATION,
        assetId: a.assetId,
        expectedAvailable: a.expected,
        actualAvailable: a.available,
        actualLocked: a.locked,
        message: `asset ${a.assetId}: all balances sum to ${a.available + a.locked} (available ${a.available}, locked ${a.locked}), deposits − withdrawals = ${a.expected}, difference ${a.available + a.locked - a.expected}`,
      }));
    if (this.invalidEvents > 0) {
      findings.push({ kind: ReconcileFindingKind.INVALID_HISTORY, message: `ledger_events: ${this.invalidEvents} events with an unknown event_type were not counted` });
    }
    return findings;
  }
}

export interface ConservationAsset {
  readonly assetId: number;
  /** Sum of available over all accounts, minor units. */
  readonly available: bigint;
  /** Sum of locked over all accounts, minor units. */
  readonly locked: bigint;
  /** Deposits − withdrawals, minor units. */
  readonly expected: bigint;
  readonly ok: boolean;
}
