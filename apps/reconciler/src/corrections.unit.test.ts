import { describe, expect, it } from 'vitest';
import { correctionJobSchema } from '@settlement/domain';
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
