/**
 * The result a correct settlement of a simulated stream must reach, as JSON (bigints as decimal
 * strings): final balances per user and asset, totals per asset, the last sequences, and the
 * malformed messages that must be in the dead letter instead.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { GeneratedStream, StreamCounts } from './generator.js';
import type { MalformedMessage } from './malformed.js';
import type { Schedule } from './schedule.js';

export interface ExpectedBalance {
  readonly available: string;
  readonly locked: string;
}

export interface ExpectedResult {
  readonly version: 1;
  readonly seed: number;
  readonly users: number;
  /** Valid messages in the stream (duplicates and malformed ones not counted). */
  readonly messages: number;
  readonly counts: StreamCounts & { readonly duplicatesInjected: number; readonly swapsInjected: number; readonly malformedInjected: number };
  readonly lastSequences: { readonly global: string; readonly funding: string; readonly bySymbol: Readonly<Record<string, string>> };
  /** userId → assetId → balance, for every balance the stream touched (fee account included). */
  readonly balances: Readonly<Record<string, Readonly<Record<string, ExpectedBalance>>>>;
  /** assetId → sums over all users, plus deposits, withdrawals and fees collected. */
  readonly totals: Readonly<Record<string, { available: string; locked: string; deposits: string; withdrawals: string; fees: string }>>;
  readonly malformed: readonly MalformedMessage[];
}

export function expectedResult(stream: GeneratedStream, schedule: Schedule, seed: number): ExpectedResult {
  const balances: Record<string, Record<string, ExpectedBalance>> = {};
  const sums = new Map<number, { available: bigint; locked: bigint }>();
  for (const [user, asset, b] of stream.ledger.rows()) {
    (balances[user.toString()] ??= {})[String(asset)] = { available: b.available.toString(), locked: b.locked.toString() };
    const sum = sums.get(asset) ?? { available: 0n, locked: 0n };
    sums.set(asset, { available: sum.available + b.available, locked: sum.locked + b.locked });
  }
  const totals: Record<string, { available: string; locked: string; deposits: string; withdrawals: string; fees: string }> = {};
  for (const [asset, t] of stream.ledger.totals) {
    const sum = sums.get(asset) ?? { available: 0n, locked: 0n };
    totals[String(asset)] = {
      available: sum.available.toString(),
      locked: sum.locked.toString(),
      deposits: t.deposits.toString(),
      withdrawals: t.withdrawals.toString(),
      fees: t.fees.toString(),
    };
  }
  return {
    version: 1,
    seed,
    users: stream.users.length,
    messages: stream.messages.length,
    counts: { ...stream.counts, duplicatesInjected: schedule.duplicates, swapsInjected: schedule.swaps, malformedInjected: schedule.malformed.length },
    lastSequences: {
      global: stream.lastSequences.global.toString(),
      funding: stream.lastSequences.funding.toString(),
      bySymbol: Object.fromEntries([...stream.lastSequences.bySymbol].map(([symbol, seq]) => [symbol, seq.toString()])),
    },
    balances,
    totals,
    malformed: schedule.malformed,
  };
}

export function writeExpected(file: string, result: ExpectedResult): void {
  mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
}
