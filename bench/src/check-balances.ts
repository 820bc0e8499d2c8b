import type { BalanceRepository } from '@settlement/scylla';
import type { ExpectedResult } from '@settlement/simulator';

export interface BalanceCheck {
  /** (user, asset) balances compared. */
  readonly checked: number;
  /** One line per balance that differs from the expectation. */
  readonly mismatches: string[];
  /** Assets whose sum over all accounts is not deposits − withdrawals. */
  readonly conservationBroken: string[];
}

/**
 * Compares every balance the simulator expects with the service's balance query (64 users at a
 * time), and checks conservation per asset on the sums read.
 */
export async function checkBalances(balances: BalanceRepository, expected: ExpectedResult): Promise<BalanceCheck> {
  const mismatches: string[] = [];
  const sums = new Map<number, bigint>();
  let checked = 0;
  const users = Object.keys(expected.balances);
  for (let i = 0; i < users.length; i += 64) {
    await Promise.all(
      users.slice(i, i + 64).map(async (user) => {
        const got = new Map((await balances.getUserBalances(BigInt(user))).map((b) => [b.assetId, b]));
        for (const [asset, want] of Object.entries(expected.balances[user]!)) {
          checked += 1;
          const have = got.get(Number(asset));
          // A row that nets to zero may never have been written: no row reads as 0/0.
          if ((have?.available ?? 0n) !== BigInt(want.available) || (have?.frozen ?? 0n) !== BigInt(want.locked)) {
            mismatches.push(`user ${user} asset ${asset}: expected ${want.available}/${want.locked}, got ${have?.available ?? '-'}/${have?.frozen ?? '-'}`);
          }
        }
        for (const b of got.values()) sums.set(b.assetId, (sums.get(b.assetId) ?? 0n) + b.total);
      }),
    );
  }
  const conservationBroken = Object.entries(expected.totals)
    .filter(([asset, t]) => (sums.get(Number(asset)) ?? 0n) !== BigInt(t.deposits) - BigInt(t.withdrawals))
    .map(([asset]) => asset);
  return { checked, mismatches, conservationBroken };
}
