import { describe, expect, it } from 'vitest';
import type { Heartbeat } from '@settlement/runtime';
import { computeLag, haltedByShard, settlersByShard } from './shards.js';

function beat(app: string, hostname: string, pid: number, status: Record<string, unknown>): Heartbeat {
  return { app, instanceId: `${hostname}-${pid}`, pid, hostname, startedAt: '', updatedAt: '', metrics: [], status };
}

describe('settlersByShard', () => {
  it('names per shard the settler processes whose heartbeat says they hold its lease', () => {
    const bySettler = settlersByShard([
      beat('settler', 'b', 2, { btc_usdt: { lastSeq: '9', leaseHeld: true }, funding: { lastSeq: '3', leaseHeld: false } }),
      beat('settler', 'a', 1, { btc_usdt: { lastSeq: '9', leaseHeld: true }, funding: { lastSeq: '3', leaseHeld: true }, eth_usdt: 'junk' }),
      // Another app's status never counts, whatever it says.
      beat('ingestor', 'c', 3, { btc_eth: { leaseHeld: true } }),
      // A settler from before leases were reported: nothing to say.
      beat('settler', 'd', 4, { btc_eth: { lastSeq: '1' } }),
    ]);
    expect(Object.fromEntries(bySettler)).toEqual({ btc_usdt: ['a:1', 'b:2'], funding: ['a:1'] });
  });
});

describe('haltedByShard', () => {
  it("reports the range a settler's heartbeat says the shard waits for, the lease holder's first", () => {
    const halts = haltedByShard([
      beat('settler', 'b', 2, { btc_usdt: { lastSeq: '9', leaseHeld: false, halted: { afterSeq: '9', throughSeq: '40' } } }),
      beat('settler', 'a', 1, { btc_usdt: { lastSeq: '9', leaseHeld: true, halted: { afterSeq: '9', throughSeq: '20' } }, funding: { lastSeq: '3', leaseHeld: true } }),
      // Malformed ranges and other apps are ignored.
      beat('settler', 'c', 3, { btc_eth: { leaseHeld: true, halted: { afterSeq: 9, throughSeq: '20' } }, eth_usdt: { halted: { afterSeq: '-1', throughSeq: '2' } } }),
      beat('ingestor', 'd', 4, { funding: { halted: { afterSeq: '1', throughSeq: '2' } } }),
    ]);
    expect(Object.fromEntries(halts)).toEqual({ btc_usdt: { afterSeq: 9n, throughSeq: 20n, reportedBy: 'a:1' } });
  });
});

describe('computeLag', () => {
  it('is enqueued minus applied, never negative', () => {
    expect(computeLag(7n, 1n)).toBe(6n);
    expect(computeLag(null, null)).toBe(0n);
    expect(computeLag(3n, 5n)).toBe(0n);
  });
});
