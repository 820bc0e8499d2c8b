import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MarketCatalog } from '@settlement/domain';
import { InputError } from './input-error.js';
import { parseInput, symbolSchema, tradeIdSchema, userIdSchema } from './params.js';
import { computeLag } from './shards.js';

const catalog = new MarketCatalog({
  assets: [{ id: 1, code: 'BTC', decimals: 8 }, { id: 2, code: 'USDT', decimals: 6 }],
  symbols: [{ name: 'btc_usdt', base: 1, quote: 2 }],
  fee_account_user_id: 0n,
});

function error(run: () => unknown): InputError {
  try {
    run();
  } catch (e) {
    if (e instanceof InputError) return e;
    throw e;
  }
  throw new Error('expected an InputError');
}

describe('parseInput', () => {
  const schema = z.object({ userId: userIdSchema, symbol: symbolSchema(catalog), tradeId: tradeIdSchema });

  it('converts ids to bigint, exactly, up to their limits', () => {
    expect(parseInput(schema, { userId: '9223372036854775807', symbol: 'btc_usdt', tradeId: '18446744073709551615' }, 'request')).toEqual({
      userId: 9_223_372_036_854_775_807n,
      symbol: 'btc_usdt',
      tradeId: 18_446_744_073_709_551_615n,
    });
  });

  it('names every bad field and the value sent; field is the first', () => {
    const e = error(() => parseInput(schema, { userId: '1e3', symbol: 'BTC/USDT', tradeId: '18446744073709551616' }, 'request'));
    expect(e.field).toBe('userId');
    expect(e.message).toBe(
      'Invalid request: userId: must be a decimal user id (1-19 digits) (got "1e3"); symbol: must be a configured symbol: btc_usdt (got "BTC/USDT"); ' +
        'tradeId: must be at most 2^64-1 (got "18446744073709551616")',
    );
  });
});

describe('computeLag', () => {
  it('is enqueued minus applied, never negative, zero when nothing was enqueued', () => {
    expect(computeLag(10n, 4n)).toBe(6n);
    expect(computeLag(10n, null)).toBe(10n);
    expect(computeLag(null, 4n)).toBe(0n);
    expect(computeLag(3n, 4n)).toBe(0n);
  });
});
