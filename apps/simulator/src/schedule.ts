/**
 * The order in which the simulator sends: every valid message once, plus injected duplicates
 * (the same bytes again a few messages later), adjacent swaps (reordering) and malformed
 * messages. Deterministic from its own seed, so changing a rate does not change the stream.
 */
import { buildMalformed, MALFORMED_KINDS, type MalformedMessage } from './malformed.js';
import type { CatalogInput } from '@settlement/domain';
import { Rng } from './rng.js';

export const EntryType = { VALID: 0, DUPLICATE: 1, MALFORMED: 2 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

export interface ScheduleEntry {
  readonly type: EntryType;
  /** Index into the valid messages (VALID, DUPLICATE) or into the malformed list. */
  readonly index: number;
}

export interface InjectionRates {
  /** Probability that a valid message is sent again soon after. */
  readonly duplicateRate: number;
  /** Probability that a valid message is swapped with the next one. */
  readonly reorderRate: number;
  /** Probability that a malformed message follows a valid one. */
  readonly malformedRate: number;
}

export interface Schedule {
  readonly entries: readonly ScheduleEntry[];
  readonly malformed: readonly MalformedMessage[];
  readonly duplicates: number;
  readonly swaps: number;
}

export function buildSchedule(validCount: number, rates: InjectionRates, seed: number, market: CatalogInput): Schedule {
  for (const [name, rate] of Object.entries(rates)) {
    if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${name} must be between 0 and 1, got ${rate}`);
  }
  // A different stream of numbers than the generator's, derived from the same seed.
  const rng = new Rng((seed * 2654435761 + 0x9e3779b9) >>> 0);
  const entries: ScheduleEntry[] = [];
  const malformed: MalformedMessage[] = [];
  let duplicates = 0;
  for (let i = 0; i < validCount; i++) {
    entries.push({ type: EntryType.VALID, index: i });
    if (rng.chance(rates.duplicateRate)) {
      // The same message again, up to 3 messages back: the original is always sent first.
      entries.push({ type: EntryType.DUPLICATE, index: i - rng.int(0, Math.min(i, 3)) });
      duplicates += 1;
    }
    if (rng.chance(rates.malformedRate)) {
      const kind = MALFORMED_KINDS[malformed.length % MALFORMED_KINDS.length]!;
      malformed.push(buildMalformed(kind, market, rng));
      entries.push({ type: EntryType.MALFORMED, index: malformed.length - 1 });
    }
  }
  let swaps = 0;
  for (let j = 0; j + 1 < entries.length; j++) {
    const a = entries[j]!;
    const b = entries[j + 1]!;
    if (a.type === EntryType.VALID && b.type === EntryType.VALID && rng.chance(rates.reorderRate)) {
      entries[j] = b;
      entries[j + 1] = a;
      swaps += 1;
      j += 1; // a message moves by one place at most
    }
  }
  return { entries, malformed, duplicates, swaps };
}
