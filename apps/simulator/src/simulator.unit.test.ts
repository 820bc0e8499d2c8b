import { describe, expect, it } from 'vitest';
import { messageEffects, parseWireMessage, MarketCatalog, testCatalogInput, type CatalogInput } from '@settlement/domain';
import { createSimulator } from './simulator.js';
import { EntryType } from './schedule.js';
import { MALFORMED_KINDS } from './malformed.js';

const market: CatalogInput = testCatalogInput(7n);
const catalog = new MarketCatalog(market);

describe('createSimulator', () => {
  it('is deterministic from the seed', () => {
    const a = createSimulator({ market, messages: 2_000, users: 50, seed: 42, duplicateRate: 0.05, reorderRate: 0.05, malformedRate: 0.01 });
    const b = createSimulator({ market, messages: 2_000, users: 50, seed: 42, duplicateRate: 0.05, reorderRate: 0.05, malformedRate: 0.01 });
    const c = createSimulator({ market, messages: 2_000, users: 50, seed: 43 });
    expect(b.messages.map((m) => m.head)).toEqual(a.messages.map((m) => m.head));
    expect(b.schedule.entries).toEqual(a.schedule.entries);
    expect(c.messages.map((m) => m.head)).not.toEqual(a.messages.map((m) => m.head));
  });

  it('sends only valid messages whose effects, applied in order, give exactly the expected balances', () => {
    const sim = createSimulator({ market, messages: 20_000, users: 200, seed: 7, feeShare: 0.5 });
    const balances = new Map<string, { available: bigint; locked: bigint }>();
    const counts = new Map<string, number>();
    let lastTradeSeq = 0n;
    let lastFundingSeq = 0n;
    for (const m of sim.messages) {
      const parsed = parseWireMessage(sim.journal.bytesFor(m, 1_700_000_000_000), catalog);
      if (!parsed.ok) throw new Error(parsed.reason);
      const message = parsed.message;
      expect(message.shard).toBe(m.shard);
      counts.set(message.kind, (counts.get(message.kind) ?? 0) + 1);
      if (message.kind === 'trade') {
        // One output_sequence counter across all symbols, strictly increasing by one.
        expect(message.outputSequence).toBe(lastTradeSeq + 1n);
        lastTradeSeq = message.outputSequence;
      } else {
        expect(message.sequenceId).toBe(lastFundingSeq + 1n);
        lastFundingSeq = message.sequenceId;
      }
      for (const d of messageEffects({ ...message, seq: m.seq }, catalog.feeAccountUserId)) {
        const key = `${d.userId}/${d.assetId}`;
        const b = balances.get(key) ?? { available: 0n, locked: 0n };
        const next = { available: b.available + d.available, locked: b.locked + d.locked };
        // Users never spend more than they have: no balance ever goes negative.
        expect(next.available >= 0n && next.locked >= 0n, `${key} after ${m.shard}:${m.seq}`).toBe(true);
        balances.set(key, next);
      }
    }
    const expected = sim.expected();
    const fromExpected = new Map<string, { available: bigint; locked: bigint }>();
    for (const [user, assets] of Object.entries(expected.balances)) {
      for (const [asset, b] of Object.entries(assets)) fromExpected.set(`${user}/${asset}`, { available: BigInt(b.available), locked: BigInt(b.locked) });
    }
    expect(balances).toEqual(fromExpected);
    expect(counts.get('trade')).toBe(expected.counts.trades);
    expect(expected.counts.trades).toBeGreaterThan(11_000);
    expect(expected.lastSequences.global).toBe(String(lastTradeSeq));
    expect(expected.lastSequences.funding).toBe(String(lastFundingSeq));
    // Conservation per asset, fee account included.
    for (const t of Object.values(expected.totals)) {
      expect(BigInt(t.available) + BigInt(t.locked)).toBe(BigInt(t.deposits) - BigInt(t.withdrawals));
    }
    expect(BigInt(expected.totals['2']!.fees)).toBeGreaterThan(0n);
    expect(expected.balances['7']).toBeDefined();
  });

  it('injects duplicates after their original, adjacent swaps, and every kind of malformed message', () => {
    const sim = createSimulator({ market, messages: 5_000, users: 50, seed: 3, duplicateRate: 0.02, reorderRate: 0.02, malformedRate: 0.01 });
    const { entries, malformed } = sim.schedule;
    const validPositions = new Map<number, number>();
    entries.forEach((e, pos) => e.type === EntryType.VALID && validPositions.set(e.index, pos));
    expect(validPositions.size).toBe(5_000);
    entries.forEach((e, pos) => {
      if (e.type === EntryType.DUPLICATE) expect(validPositions.get(e.index)!).toBeLessThan(pos);
    });
    // Every valid message is at most one place away from its place in the stream.
    let moved = 0;
    const validOrder = entries.filter((e) => e.type === EntryType.VALID).map((e) => e.index);
    validOrder.forEach((index, i) => {
      expect(Math.abs(index - i)).toBeLessThanOrEqual(1);
      if (index !== i) moved += 1;
    });
    expect(moved).toBe(sim.schedule.swaps * 2);
    expect(sim.schedule.swaps).toBeGreaterThan(20);
    expect(sim.schedule.duplicates).toBeGreaterThan(20);
    expect(new Set(malformed.map((m) => m.kind))).toEqual(new Set(MALFORMED_KINDS));
    for (const m of malformed) {
      const parsed = parseWireMessage(m.raw, catalog);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.field, `${m.kind}: ${parsed.reason}`).toBe(m.field);
    }
  });

  it('replays only what it journaled, per stream, from a sequence on', () => {
    const sim = createSimulator({ market, messages: 1_000, users: 20, seed: 5 });
    expect(sim.replay('global', 1n, 10)).toEqual([]);
    for (let i = 0; i < 600; i++) sim.frameAt(i, 1_700_000_000_000);
    const trades = sim.messages.filter((m) => m.kind === 'trade' && sim.journal.bytesFor(m, 0) !== undefined);
    const global = sim.replay('global', 5n, 1_000_000);
    expect(global.length).toBeGreaterThan(0);
    expect(global.every((raw) => parseWireMessage(raw, catalog).ok)).toBe(true);
    const seqs = global.map((raw) => {
      const p = parseWireMessage(raw, catalog);
      return p.ok && p.message.kind === 'trade' ? p.message.outputSequence : -1n;
    });
    expect(seqs[0]).toBe(5n);
    expect(seqs).toEqual([...seqs].sort((a, b) => (a < b ? -1 : 1)));
    const btc = sim.replay('btc_usdt', 1n, 5);
    expect(btc.length).toBe(5);
    expect(btc.every((raw) => raw.includes('"base_asset":1,"quote_asset":2'))).toBe(true);
    const funding = sim.replay('funding', 3n, 2);
    expect(funding.map((raw) => /"sequence_id":(\d+)/.exec(raw)![1])).toEqual(['3', '4']);
    expect(trades.length).toBeGreaterThan(0);
  });

  it('replays the malformed frames of the global stream where they were sent, never split from the trade after them', () => {
    const sim = createSimulator({ market, messages: 2_000, users: 20, seed: 8, malformedRate: 0.05 });
    const sent: string[] = [];
    for (let i = 0; i < sim.schedule.entries.length; i++) sent.push(sim.frameAt(i, 1_700_000_000_000));
    const malformed = new Set(sim.schedule.malformed.map((m) => m.raw));
    expect(malformed.size).toBeGreaterThan(20);
    // What was sent, funding and duplicates left out, is what the whole replay serves, in order.
    const isTradeOrMalformed = (raw: string): boolean => malformed.has(raw) || (parseWireMessage(raw, catalog).ok && !raw.includes('"event_type"'));
    const firstCopies = sent.filter((raw, i) => sent.indexOf(raw) === i).filter(isTradeOrMalformed);
    const whole = sim.replay('global', 0n, 1_000_000);
    expect(new Set(whole)).toEqual(new Set(firstCopies));
    expect(whole.filter((raw) => malformed.has(raw))).toEqual(firstCopies.filter((raw) => malformed.has(raw)));
    // Paged, a page ends with a trade and the next starts right after it: nothing lost, nothing twice.
    const paged: string[] = [];
    for (let from = 0n; ; ) {
      const page = sim.replay('global', from, 25);
      paged.push(...page);
      if (page.length < 25) break;
      const last = parseWireMessage(page.at(-1)!, catalog);
      expect(last.ok).toBe(true);
      if (last.ok && last.message.kind === 'trade') from = last.message.outputSequence + 1n;
    }
    expect(paged).toEqual(whole);
    // Per-symbol and funding replays carry no malformed frame (they have no symbol or sequence).
    expect(sim.replay('btc_usdt', 0n, 1_000_000).some((raw) => malformed.has(raw))).toBe(false);
  });

  it('cannot replay funding events it sent without sequence ids', () => {
    const sim = createSimulator({ market, messages: 200, users: 20, seed: 5, numberFundingEvents: false });
    for (let i = 0; i < 200; i++) sim.frameAt(i, 0);
    expect(sim.replay('funding', 0n, 100)).toEqual([]);
    expect(sim.messages.filter((m) => m.kind === 'funding').every((m) => m.head.includes('"sequence_id":0,'))).toBe(true);
  });
});
