/** Readiness: Redis and Cassandra both answer within the timeout. */
import type { Ops } from '../ops/context.js';

export interface Readiness {
  readonly ready: boolean;
  readonly checks: { readonly redis: string; readonly cassandra: string };
}

async function probe(run: () => Promise<unknown>, timeoutMs: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([run(), timeout]);
    return 'ok';
  } catch (error) {
    return `error: ${(error as Error).message}`;
  } finally {
    clearTimeout(timer);
  }
}

export async function checkReadiness(ops: Pick<Ops, 'redis' | 'scylla'>, timeoutMs: number): Promise<Readiness> {
  const [redis, cassandra] = await Promise.all([
    probe(() => ops.redis.ping(), timeoutMs),
    probe(() => ops.scylla.execute('SELECT release_version FROM system.local', [], { prepare: true, isIdempotent: true }), timeoutMs),
  ]);
  return { ready: redis === 'ok' && cassandra === 'ok', checks: { redis, cassandra } };
}
