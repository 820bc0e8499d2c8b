import { describe, expect, it } from 'vitest';
import { correctionJobSchema } from '@settlement/domain';
import { mapBounded } from './bounded.js';
import { correctionId } from './corrections.js';

describe('correctionId', () => {
  const rows = [{ userId: 5n, assetId: 2, availableDelta: -3n, lockedDelta: 0n, version: 40n, availableBefore: 103n, lockedBefore: 7n }];
  it('is the same for the same measured rows whatever run found them, different otherwise, and valid for the job schema and BullMQ', () => {
    const id = correctionId('btc_usdt', rows);
    expect(id).toBe(correctionId('btc_usdt', rows.map((r) => ({ ...r }))));
    expect(id).not.toBe(correctionId('eth_usdt', rows));
    for (const changed of [{ availableDelta: -4n }, { lockedDelta: 1n }, { version: 41n }, { availableBefore: 104n }, { lockedBefore: 8n }, { userId: 6n }, { assetId: 3 }]) {
      expect(correctionId('btc_usdt', [{ ...rows[0]!, ...changed }]), JSON.stringify(Object.keys(changed))).not.toBe(id);
    }
    expect(id).toMatch(/^rc-btc_usdt-[0-9a-f]{32}$/);
    expect(id).not.toContain(':');
    expect(correctionJobSchema.shape.correctionId.safeParse(correctionId('a'.repeat(41), rows)).success).toBe(true);
  });
});

describe('mapBounded', () => {
  it('keeps order and never runs more than the bound at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapBounded([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      running += 1;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, n));
      running -= 1;
      return n * 2;
    });
    expect(out).toEqual([10, 2, 8, 4, 6, 0, 12]);
    expect(peak).toBe(3);
    expect(await mapBounded([], 4, async () => 1)).toEqual([]);
  });
});
