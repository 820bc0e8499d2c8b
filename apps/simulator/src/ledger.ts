/**
 * The simulator's own view of every balance, so it only sends what users can afford and can
 * write the balances a correct settlement must end with.
 */
export interface SimBalance {
  available: bigint;
  locked: bigint;
  /** The engine's per-balance version, bumped on each change (sent in trades). */
  version: bigint;
}

export interface AssetTotals {
  deposits: bigint;
  withdrawals: bigint;
  fees: bigint;
}

export class SimLedger {
  private readonly balances = new Map<string, SimBalance>();
  readonly totals = new Map<number, AssetTotals>();

  constructor(assetIds: readonly number[]) {
    for (const id of assetIds) this.totals.set(id, { deposits: 0n, withdrawals: 0n, fees: 0n });
  }

  get(userId: bigint, assetId: number): SimBalance {
    const key = `${userId}/${assetId}`;
    let balance = this.balances.get(key);
    if (balance === undefined) {
      balance = { available: 0n, locked: 0n, version: 0n };
      this.balances.set(key, balance);
    }
    return balance;
  }

  /** Applies a change and returns the balance's new version. Refuses to go negative. */
  change(userId: bigint, assetId: number, availableDelta: bigint, lockedDelta: bigint, what: string): bigint {
    const balance = this.get(userId, assetId);
    const available = balance.available + availableDelta;
    const locked = balance.locked + lockedDelta;
    if (available < 0n || locked < 0n) {
      throw new Error(`simulator bug: ${what} would leave user ${userId} asset ${assetId} at available ${available}, locked ${locked}`);
    }
    balance.available = available;
    balance.locked = locked;
    balance.version += 1n;
    return balance.version;
  }

  total(assetId: number): AssetTotals {
    const totals = this.totals.get(assetId);
    if (totals === undefined) throw new Error(`simulator bug: asset ${assetId} is not configured`);
    return totals;
  }

  /** Every balance row touched, as [userId, assetId, balance]. */
  *rows(): Generator<[bigint, number, SimBalance]> {
    for (const [key, balance] of this.balances) {
      const [user, asset] = key.split('/');
      yield [BigInt(user!), Number(asset), balance];
    }
  }

  /**
   * Conservation: per asset, the sum of all balances equals deposits − withdrawals (fees move
   * between accounts, trades are zero-sum). Throws when the simulator broke its own books.
   */
  assertConserved(): void {
    const sums = new Map<number, bigint>();
    for (const [, asset, b] of this.rows()) sums.set(asset, (sums.get(asset) ?? 0n) + b.available + b.locked);
    for (const [asset, t] of this.totals) {
      const sum = sums.get(asset) ?? 0n;
      if (sum !== t.deposits - t.withdrawals) {
        throw new Error(`simulator bug: asset ${asset} sums to ${sum}, deposits − withdrawals = ${t.deposits - t.withdrawals}`);
      }
    }
  }
}
