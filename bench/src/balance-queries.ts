import type cassandra from 'cassandra-driver';
import type { BalanceRepository } from '@settlement/scylla';
import { LatencyRecorder } from './latency.js';

export interface BalanceQueryResult {
  readonly service: ReturnType<LatencyRecorder['summary']>;
  readonly raw: ReturnType<LatencyRecorder['summary']>;
}

/**
 * Alternates the service's balance query (BalanceRepository.getUserBalances: one
 * single-partition read, summed per asset) with the raw prepared read of the same partition,
 * one at a time, so both see the same load. With `pairsPerS` the pairs are paced (an open
 * loop at a fixed rate, as users would ask); without, they run back to back.
 */
export async function measureBalanceQueries(options: {
  client: cassandra.Client;
  keyspace: string;
  repository: BalanceRepository;
  users: readonly bigint[];
  /** Stop after this long, ms. */
  durationMs: number;
  /** Or after this many pairs. */
  pairsMax: number;
  /** Pairs started per second; undefined: back to back. */
  pairsPerS?: number;
  signal?: AbortSignal;
}): Promise<BalanceQueryResult> {
  const service = new LatencyRecorder();
  const raw = new LatencyRecorder();
  const rawCql = `SELECT asset_id, shard, available, locked, version FROM ${options.keyspace}.user_balances WHERE user_id = ?`;
  const deadline = performance.now() + options.durationMs;
  let i = 0;
  // Warm both paths (preparing, connections) before measuring.
  for (const user of options.users.slice(0, 20)) {
    await options.repository.getUserBalances(user);
    await options.client.execute(rawCql, [user], { prepare: true, isIdempotent: true });
  }
  const started = performance.now();
  while (performance.now() < deadline && i < options.pairsMax && !options.signal?.aborted) {
    if (options.pairsPerS !== undefined) {
      const dueMs = started + (i * 1000) / options.pairsPerS - performance.now();
      if (dueMs > 0) await new Promise((resolve) => setTimeout(resolve, dueMs));
    }
    const user = options.users[(i * 7919) % options.users.length]!;
    const order = i % 2 === 0;
    for (const which of order ? ['service', 'raw'] : ['raw', 'service']) {
      const queryStarted = performance.now();
      if (which === 'service') {
        await options.repository.getUserBalances(user);
        service.recordMs(performance.now() - queryStarted);
      } else {
        await options.client.execute(rawCql, [user], { prepare: true, isIdempotent: true });
        raw.recordMs(performance.now() - queryStarted);
      }
    }
    i += 1;
  }
  return { service: service.summary(), raw: raw.summary() };
}
