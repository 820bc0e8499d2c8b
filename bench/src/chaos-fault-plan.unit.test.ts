import { describe, expect, it } from 'vitest';
import { Rng } from '@settlement/simulator';
import { FAULT_KINDS, faultPlan, RING_FAULT_KINDS } from './chaos-fault-plan.js';

/** The run's generator as runChaos makes it: the simulator's Rng from the seed. */
const seeded = (seed: number) => {
  const rng = new Rng(seed);
  return () => rng.next();
};

describe('faultPlan', () => {
  it('is the same plan for the same seed, another for another seed', () => {
    const plan = (seed: number) => faultPlan(seeded(seed), 24, FAULT_KINDS, 3);
    expect(plan(1)).toEqual(plan(1));
    expect(plan(2)).not.toEqual(plan(1));
  });

  it('uses every kind once before any twice, in order of time, inside the stream', () => {
    const plan = faultPlan(seeded(7), FAULT_KINDS.length, FAULT_KINDS, 1);
    expect(plan.map((p) => p.kind).sort()).toEqual([...FAULT_KINDS].sort());
    expect(plan.map((p) => p.at)).toEqual(plan.map((p) => p.at).sort((a, b) => a - b));
    for (const { at } of plan) {
      expect(at).toBeGreaterThanOrEqual(0.05);
      expect(at).toBeLessThan(0.9);
    }
  });

  it('spreads the Cassandra kills, one in each equal part of the stream', () => {
    const plan = faultPlan(seeded(3), 24, RING_FAULT_KINDS, 3);
    const kills = plan.filter((p) => p.kind === 'kill-cassandra').map((p) => p.at);
    expect(kills).toHaveLength(3);
    kills.forEach((at, i) => {
      expect(at).toBeGreaterThanOrEqual(0.05 + (0.85 * i) / 3);
      expect(at).toBeLessThan(0.05 + (0.85 * (i + 1)) / 3);
    });
    expect(plan.filter((p) => p.kind !== 'kill-cassandra')).toHaveLength(21);
    expect(plan.some((p) => p.kind === 'restart-cassandra')).toBe(false);
  });
});
