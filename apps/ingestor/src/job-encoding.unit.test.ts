import { describe, expect, it } from 'vitest';
import { decodeSettlementJob, encodeSettlementJob, MarketCatalog, parseWireMessage, type SettlementMessage } from '@settlement/domain';
import { encodeJobData } from './job-encoding.js';

const catalog = new MarketCatalog({
  assets: [
    { id: 1, code: 'BTC', decimals: 8 },
    { id: 2, code: 'USDT', decimals: 6 },
  ],
  symbols: [{ name: 'btc_usdt', base: 1, quote: 2 }],
  fee_account_user_id: 0n,
});

function parsed(text: string, seq: bigint): SettlementMessage {
  const result = parseWireMessage(text, catalog);
  if (!result.ok) throw new Error(result.reason);
  return { ...result.message, seq } as SettlementMessage;
}

describe('encodeJobData', () => {
  it('gives exactly what encodeSettlementJob gives, for trades (with and without fees) and funding events', () => {
    const big = '18446744073709551615';
    const messages = [
      parsed(
        `{"trade_id":${big},"buy_order_id":2,"sell_order_id":3,"buyer_user_id":9007199254740993,"seller_user_id":11,"price":6000000000000,"quantity":100000,` +
          `"base_asset":1,"quote_asset":2,"buyer_refund":5,"seller_refund":6,"match_seq":7,"output_sequence":8,"settled_at":1700000000000,` +
          `"buyer_quote_version":1,"buyer_base_version":2,"seller_base_version":3,"seller_quote_version":4,"buyer_fee":10,"seller_fee":20}`,
        8n,
      ),
      parsed(
        `{"trade_id":1,"buy_order_id":2,"sell_order_id":3,"buyer_user_id":10,"seller_user_id":11,"price":100000000,"quantity":1,` +
          `"base_asset":1,"quote_asset":2,"buyer_refund":0,"seller_refund":0,"match_seq":7,"output_sequence":9,"settled_at":1,` +
          `"buyer_quote_version":1,"buyer_base_version":2,"seller_base_version":3,"seller_quote_version":4}`,
        9n,
      ),
    ];
    const funding = parsed('{"user_id":10,"sequence_id":0,"event_type":"UNLOCK","amount":5,"currency":2,"related_id":77,"created_at":1700000000000}', 12n);
    for (const [shard, list] of [['btc_usdt', messages], ['funding', [funding]]] as const) {
      const fast = encodeJobData(shard, 7n, list);
      expect(fast).toStrictEqual(encodeSettlementJob(shard, 7n, list));
      expect(decodeSettlementJob(JSON.parse(JSON.stringify(fast))).messages).toEqual(list);
    }
  });
});
