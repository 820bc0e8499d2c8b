/**
 * Seeded pseudo-random numbers (mulberry32): the same seed gives the same stream on every
 * machine, so a simulated run can be reproduced and its expected result recomputed.
 */
export class Rng {
  private state: number;

  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`seed must be a non-negative integer, got ${seed}`);
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Uniform integer in [min, max], both included; bounds below 2^32. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Uniform bigint in [min, max]; for ranges that fit in 2^32 steps. */
  bigint(min: bigint, max: bigint): bigint {
    const span = max - min + 1n;
    if (span <= 0n) throw new RangeError(`empty range ${min}..${max}`);
    if (span <= 4294967296n) return min + BigInt(Math.floor(this.next() * Number(span)));
    // Wider ranges: two draws are enough for the amounts the simulator uses.
    const high = BigInt(Math.floor(this.next() * 4294967296));
    const low = BigInt(Math.floor(this.next() * 4294967296));
    return min + (((high << 32n) | low) % span);
  }

  chance(probability: number): boolean {
    return probability > 0 && this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }
}
