import { engineSequence, MarketCatalog, parseWireMessage, type SettlementMessage } from '@settlement/domain';
import type { Simulator } from '@settlement/simulator';

/**
 * The simulator's valid messages [from, count) as the settler sees them (validated, routed,
 * sequenced), for the raw path. Uses the same wire parser as the ingestor.
 */
export function sequencedMessages(simulator: Simulator, catalog: MarketCatalog, count: number, from = 0): SettlementMessage[] {
  const out: SettlementMessage[] = [];
  const nowMs = Date.now();
  for (let i = from; i < count; i++) {
    const parsed = parseWireMessage(simulator.frameAt(i, nowMs), catalog);
    if (!parsed.ok) throw new Error(`simulator produced an invalid message at ${i}: ${parsed.reason}`);
    out.push({ ...parsed.message, seq: engineSequence(parsed.message) } as SettlementMessage);
  }
  return out;
}
