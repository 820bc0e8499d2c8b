import cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { whenReachable } from './connect-when-reachable.js';

const quiet = { info: () => undefined, warn: () => undefined };

describe('whenReachable', () => {
  it('runs a start-up step again while the cluster is unreachable, then returns its result', async () => {
    let attempts = 0;
    const result = await whenReachable(
      'read the history layout',
      async () => {
        attempts += 1;
        if (attempts < 3) throw new cassandra.errors.NoHostAvailableError({});
        return 'dual';
      },
      { retryInitialMs: 1, retryMaxMs: 5, logger: quiet },
    );
    expect(result).toBe('dual');
    expect(attempts).toBe(3);
  });

  it('fails at once on an error waiting does not fix', async () => {
    let attempts = 0;
    const step = async (): Promise<never> => {
      attempts += 1;
      throw new cassandra.errors.ResponseError(0x2200, 'Keyspace missing does not exist');
    };
    await expect(whenReachable('read the history layout', step, { retryInitialMs: 1, retryMaxMs: 5, logger: quiet })).rejects.toThrow('does not exist');
    expect(attempts).toBe(1);
  });
});
