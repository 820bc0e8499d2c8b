import { describe, expect, it } from 'vitest';
import { correctionJobSchema } from '@settlement/domain';
import { mapBounded } from './bounded.js';
import { correctionId } from './corrections.js';

describe('correctionId', () => {
  const rows = [{ userId: 5n, assetId: 2, availableDelta: -3n, lockedDelta: 0n }];
  it('is the same for the same run and rows, different otherwise, and valid for the job schema and BullMQ', () => {
    const id = correctionId('repeat:reconcile-hourly:1700000000000', 'btc_usdt', rows);
    expect(id).toBe(correctionId('repeat:reconcile-hourly:1700000000000', 'btc_usdt', rows));
    expect(id).not.toBe(correctionId('repeat:reconcile-hourly:1700003600000', 'btc_usdt', rows));
    expect(id).not.toBe(correctionId('repeat:reconcile-hourly:1700000000000', 'btc_usdt', [{ ...rows[0]!, availableDelta: -4n }]));
    expect(id).toMatch(/^rc-[0-9a-f]{10}-btc_usdt-[0-9a-f]{16}$/);
    expect(id).not.toContain(':');
    expect(correctionJobSchema.shape.correctionId.safeParse(correctionId('x'.repeat(200), 'a'.repeat(41), rows)).success).toBe(true);
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
