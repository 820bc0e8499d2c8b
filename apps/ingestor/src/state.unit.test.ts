import { describe, expect, it } from 'vitest';
import { rebuildState } from './state.js';

const tradeShards = ['btc_usdt', 'eth_usdt', 'btc_eth'];
const marks = (entries: [string, bigint][]) => new Map(entries);

describe('rebuildState', () => {
  it('after Redis came back empty: each shard from its watermark, global from the lowest trade shard', () => {
    const { state, raised } = rebuildState({
      hash: {},
      watermarks: marks([['btc_usdt', 120n], ['eth_usdt', 95n], ['btc_eth', 130n], ['funding', 40n]]),
      tradeShards,
      sequenceScope: 'global',
    });
    expect(Object.fromEntries(state)).toEqual({ btc_usdt: 120n, eth_usdt: 95n, btc_eth: 130n, funding: 40n, global: 95n });
    expect(raised).toEqual(['btc_usdt', 'eth_usdt', 'btc_eth', 'funding', 'global']);
  });

  it('a trade shard that never settled anything takes global back to 0 (a full replay, never a loss)', () => {
    const { state } = rebuildState({ hash: {}, watermarks: marks([['btc_usdt', 120n]]), tradeShards, sequenceScope: 'global' });
    expect(state.get('global')).toBeUndefined();
    expect(state.get('btc_usdt')).toBe(120n);
  });

  it('after a failover to a lagging replica: keeps its consistent snapshot, raises shards settled beyond it', () => {
    const { state, raised } = rebuildState({
      hash: { global: '90', btc_usdt: '88', eth_usdt: '90', btc_eth: '70', funding: '30', 'funding:assigned': '30' },
      watermarks: marks([['btc_usdt', 120n], ['eth_usdt', 85n], ['funding', 31n]]),
      tradeShards,
      sequenceScope: 'global',
    });
    expect(Object.fromEntries(state)).toEqual({ global: 90n, btc_usdt: 120n, eth_usdt: 90n, btc_eth: 70n, funding: 31n, 'funding:assigned': 30n });
    expect(raised).toEqual(['btc_usdt', 'funding']);
  });

  it('per_symbol: the stream positions are the shard positions; u64 values stay exact', () => {
    const { state } = rebuildState({ hash: {}, watermarks: marks([['btc_usdt', 18446744073709551615n]]), tradeShards, sequenceScope: 'per_symbol' });
    expect(Object.fromEntries(state)).toEqual({ btc_usdt: 18446744073709551615n });
  });

  it('a fresh install (no hash, no watermark) starts at 0', () => {
    expect(rebuildState({ hash: {}, watermarks: new Map(), tradeShards, sequenceScope: 'global' }).state.size).toBe(0);
  });
});
