import { describe, expect, it } from 'vitest';
import { testCatalog } from './test-catalog.js';
import { isInteger, parse as parseLosslessJson } from 'lossless-json';
import { parseJsonWithBigints, parseWireMessage } from './wire.js';

const catalog = testCatalog();

const trade = {
  trade_id: 1, buy_order_id: 2, sell_order_id: 3, buyer_user_id: 10, seller_user_id: 11,
  price: 60_000_000_000, quantity: 1_000_000, base_asset: 1, quote_asset: 2,
  buyer_refund: 5, seller_refund: 0, match_seq: 7, output_sequence: 100, settled_at: 1_700_000_000_000,
  buyer_quote_version: 1, buyer_base_version: 1, seller_base_version: 1, seller_quote_version: 1,
};

const withField = (patch: Record<string, unknown>) => JSON.stringify({ ...trade, ...patch });

describe('parseWireMessage', () => {
  it('parses a MatchExecData trade and computes the exact quote amount', () => {
    const result = parseWireMessage(JSON.stringify(trade), catalog);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.message).toMatchObject({ kind: 'trade', shard: 'btc_usdt', tradeId: 1n, quoteAmount: 600_000_000n, buyerFee: 0n });
  });

  it('keeps integers above 2^53 exact', () => {
    const text = JSON.stringify(trade).replace('"trade_id":1', '"trade_id":18446744073709551615');
    const result = parseWireMessage(text, catalog);
    expect(result.ok && result.message.kind === 'trade' && result.message.tradeId).toBe(18_446_744_073_709_551_615n);
  });

  it.each([
    ['not json', '{"trade_id": 1,', /^Invalid message: not JSON/],
    ['an array', '[1,2]', /^Invalid message: expected a JSON object$/],
    ['unknown kind', '{"foo": 1}', /neither a trade/],
    ['missing field', JSON.stringify({ ...trade, quantity: undefined }), /^Invalid trade: quantity: is required$/],
    ['wrong type', withField({ price: 'abc' }), /^Invalid trade: price: must be an unsigned integer$/],
    ['negative', withField({ buyer_refund: -1 }), /^Invalid trade: buyer_refund: must not be negative$/],
    ['fractional', withField({ quantity: 1.5 }), /^Invalid trade: quantity: must be an unsigned integer$/],
    ['above 2^64', JSON.stringify(trade).replace('"match_seq":7', '"match_seq":18446744073709551616'), /^Invalid trade: match_seq: must be at most 2\^64-1$/],
    ['unknown asset', withField({ quote_asset: 9 }), /^Invalid trade: quote_asset: unknown asset 9$/],
    ['unlisted pair', withField({ base_asset: 2, quote_asset: 1 }), /no symbol trades 2\/1/],
    ['inexact quote', withField({ quantity: 1, price: 3 }), /^Invalid trade: price: price × quantity \(3\) is not a multiple of the quote divisor 100000000$/],
    ['fee above quantity', withField({ buyer_fee: 2_000_000 }), /buyer_fee: 2000000 exceeds quantity/],
    ['bad event type', JSON.stringify({ user_id: 1, sequence_id: 0, event_type: 'GIFT', amount: 5, currency: 1, related_id: 0, created_at: 0 }), /^Invalid funding event: event_type: must be one of DEPOSIT, WITHDRAWAL, LOCK, UNLOCK$/],
    ['zero amount', JSON.stringify({ user_id: 1, sequence_id: 0, event_type: 'DEPOSIT', amount: 0, currency: 1, related_id: 0, created_at: 0 }), /^Invalid funding event: amount: must be positive$/],
  ])('rejects %s with a reason naming the field', (_name, text, reason) => {
    const result = parseWireMessage(text, catalog);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(reason);
  });

  it('parses a LedgerEvent', () => {
    const result = parseWireMessage(
      '{"user_id": 42, "sequence_id": 0, "event_type": "LOCK", "amount": 9007199254740993, "currency": 2, "related_id": 0, "created_at": 1}',
      catalog,
    );
    expect(result).toEqual({
      ok: true,
      message: { kind: 'funding', shard: 'funding', userId: 42n, sequenceId: 0n, eventType: 'LOCK', amount: 9_007_199_254_740_993n, currency: 2, relatedId: 0n, createdAt: 1n },
    });
  });

  it('checks a frame by hand exactly as zod does: same message, or the same reason', () => {
    // A 16-digit field sends a frame through lossless-json and zod; zod ignores unknown fields.
    const throughZod = (text: string) => text.replace(/^\{/, '{"zod_path":1234567890123456,');
    const funding = { user_id: 42, sequence_id: 0, event_type: 'DEPOSIT', amount: 5, currency: 1, related_id: 0, created_at: 1 };
    const frames = [
      JSON.stringify(trade),
      withField({ buyer_fee: 3, seller_fee: 4, symbol: 'BTC_USDT' }),
      withField({ symbol: 'x'.repeat(65) }),
      withField({ symbol: 7 }),
      withField({ buyer_fee: null }),
      withField({ seller_fee: -1 }),
      withField({ price: 0 }),
      withField({ quantity: -0 }),
      withField({ trade_id: -0 }),
      withField({ base_asset: 2147483648 }),
      withField({ base_asset: 0 }),
      withField({ match_seq: '7' }),
      withField({ settled_at: true }),
      withField({ extra: { nested: [1, 2] } }),
      JSON.stringify({ ...trade, seller_quote_version: undefined }),
      JSON.stringify(funding),
      JSON.stringify({ ...funding, event_type: 'UNLOCK', amount: 999_999_999_999_999 }),
      JSON.stringify({ ...funding, event_type: 'deposit' }),
      JSON.stringify({ ...funding, amount: 0 }),
      JSON.stringify({ ...funding, currency: 3 }),
      JSON.stringify({ ...funding, currency: 2147483648 }),
      JSON.stringify({ ...funding, related_id: -2 }),
      JSON.stringify({ ...funding, created_at: undefined }),
      JSON.stringify({ ...funding, user_id: 1.5 }),
    ];
    for (const text of frames) {
      expect(parseWireMessage(text, catalog), text).toEqual(parseWireMessage(throughZod(text), catalog));
    }
    expect(frames.map((t) => parseWireMessage(t, catalog).ok)).toContain(false);
    expect(frames.map((t) => parseWireMessage(t, catalog).ok)).toContain(true);
  });

  it('takes the JSON.parse fast path only where it gives exactly what lossless-json gives', () => {
    const lossless = (text: string) => parseLosslessJson(text, null, (n: string) => (isInteger(n) ? BigInt(n) : Number(n)));
    for (const text of [
      JSON.stringify(trade),
      '{"user_id": 42, "sequence_id": 0, "event_type": "DEPOSIT", "amount": 999999999999999, "currency": 2, "related_id": 0, "created_at": 1}',
      '{"amount": 9007199254740993}',
      '{"amount": 1.0}',
      '{"amount": 1e3}',
      '{"amount": -5}',
      '{"a": [1, 2], "b": {"c": 3}}',
    ]) {
      expect(parseJsonWithBigints(text)).toEqual(lossless(text));
    }
  });
});
