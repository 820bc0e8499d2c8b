import { describe, expect, it } from 'vitest';
import { consistencyRefusal, replicasAwaited } from './consistency.js';

describe('consistencyRefusal', () => {
  it('accepts the quorum family at any replication factor, and one only with a single replica', () => {
    for (const rf of [1, 2, 3, 5]) {
      expect(consistencyRefusal('quorum', rf)).toBeUndefined();
      expect(consistencyRefusal('local_quorum', rf)).toBeUndefined();
    }
    expect(consistencyRefusal('one', 1)).toBeUndefined();
    expect(replicasAwaited('local_quorum', 3)).toBe(2);
  });

  it('refuses one and local_one with several replicas, naming both settings', () => {
    expect(consistencyRefusal('one', 3)).toBe(
      'scylladb.consistency one with replication factor 3: a read waits for 1 of 3 replicas and may miss a write acknowledged by 1 others; use local_quorum or quorum (or replication factor 1)',
    );
    expect(consistencyRefusal('local_one', 2)).toContain('scylladb.consistency local_one with replication factor 2');
  });
});
