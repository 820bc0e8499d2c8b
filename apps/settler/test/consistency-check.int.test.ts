/**
 * A consistency that cannot read back its own writes for the keyspace's replication is refused
 * at start-up, with one message naming both settings (issue 17, point 3): with RF=3, a read at
 * ONE can miss a write acknowledged by one other replica, and the settler decides what to write
 * from what it reads.
 */
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, testConfig, type TestKeyspace } from '@settlement/testing';
import { startSettler } from '../src/settler.js';

const opened: TestKeyspace[] = [];

afterAll(async () => {
  for (const ks of opened) await ks.drop();
});

describe('consistency against replication at start-up', () => {
  it('refuses one with a keyspace of three replicas, naming both settings', async () => {
    const ks = await createTestKeyspace(testConfig({ scylladb: { replication_factor: 3, consistency: 'one' } }));
    opened.push(ks);
    await expect(startSettler({ config: ks.config, logger: pino({ level: 'silent' }) })).rejects.toThrow(
      `Invalid config: scylladb.consistency one with replication factor 3: a read waits for 1 of 3 replicas`,
    );
  });

  it('starts with local_quorum on the same keyspace shape at one replica', async () => {
    const ks = await createTestKeyspace(testConfig({ scylladb: { replication_factor: 1, consistency: 'local_quorum' } }));
    opened.push(ks);
    const settler = await startSettler({ config: ks.config, logger: pino({ level: 'silent' }) });
    await settler.close();
  });
});
