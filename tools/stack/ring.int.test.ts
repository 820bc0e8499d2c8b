/**
 * The local three-node ring keeps taking LOGGED BATCHes and answering reads at QUORUM while one
 * node is dead (kill -9 of its JVM), and takes the node back.
 *
 * Opt-in: runs only with SETTLEMENT_TEST_NODES=3, which makes the global setup start (or reuse)
 * the ring, so `npm test` in CI never starts three JVMs:
 *
 *   SETTLEMENT_TEST_NODES=3 npx vitest run tools/stack/ring.int.test.ts
 */
import cassandra from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestKeyspace, stackEndpoints, testConfig, type TestKeyspace } from '../testing/index.js';
import { openLocalRing, type LocalRing } from './ring.js';

const RING_NODES = 3;
/** Node killed in the test: not the seed, so the seed's gossip keeps the survivors together. */
const VICTIM_NODE = 2;
const BATCHES_PER_PHASE = 300;
const ROWS_PER_BATCH = 5;
const BATCHES_IN_FLIGHT = 4;

const say = (message: string) => process.stderr.write(`[ring test] ${message}\n`);

describe.skipIf(process.env.SETTLEMENT_TEST_NODES !== String(RING_NODES))('local three-node ring', () => {
  let ring: LocalRing;
  let ks: TestKeyspace;
  let client: cassandra.Client;
  let table: string;

  beforeAll(async () => {
    const stack = stackEndpoints();
    expect(stack.source).toBe('ring');
    ring = openLocalRing(stack.ringDir!)!;
    expect(ring.state.nodes).toHaveLength(RING_NODES);
    // The harness's keyspace: every migration, RF from the ring.
    ks = await createTestKeyspace(testConfig());
    const keyspace = ks.config.scylladb.keyspace;
    table = `${keyspace}.ring_check`;
    await ks.client.execute(`CREATE TABLE IF NOT EXISTS ${table} (pk int, ck int, v bigint, PRIMARY KEY (pk, ck))`);
    const port = Number(stack.scyllaHosts[0]!.split(':')[1] ?? 9042);
    client = new cassandra.Client({
      contactPoints: stack.scyllaHosts.map((h) => h.split(':')[0]!),
      localDataCenter: 'datacenter1',
      protocolOptions: { port, maxVersion: 3 },
      encoding: { useBigIntAsLong: true },
      socketOptions: { connectTimeout: 3_000, readTimeout: 12_000 },
      queryOptions: { consistency: cassandra.types.consistencies.quorum, prepare: true },
    });
    await client.connect();
  }, 180_000);

  afterAll(async () => {
    // Leave the ring whole for whoever uses it next, even when a check failed with the node down.
    if (ring && ring.pidOf(VICTIM_NODE) === undefined) await ring.restartNode(VICTIM_NODE, say);
    await client?.shutdown();
    await ks?.drop();
  }, 180_000);

  /** Writes batches [from, from + count) with BATCHES_IN_FLIGHT loops over a shared cursor; returns batches/s. */
  async function writeBatches(from: number, count: number): Promise<number> {
    const insert = `INSERT INTO ${table} (pk, ck, v) VALUES (?, ?, ?)`;
    let next = from;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: BATCHES_IN_FLIGHT }, async () => {
        for (let batch = next++; batch < from + count; batch = next++) {
          // One statement per partition: the batch really spans replicas, as a settlement batch does.
          const queries = Array.from({ length: ROWS_PER_BATCH }, (_, row) => ({ query: insert, params: [batch * ROWS_PER_BATCH + row, batch, BigInt(batch)] }));
          await client.batch(queries, { prepare: true, logged: true, isIdempotent: true, consistency: cassandra.types.consistencies.quorum });
        }
      }),
    );
    return count / ((performance.now() - started) / 1000);
  }

  /** Reads every row of batches [0, count) back at QUORUM, a batch's partitions per query, and checks each. */
  async function readBack(count: number): Promise<void> {
    const select = `SELECT pk, v FROM ${table} WHERE pk IN ? AND ck = ?`;
    let next = 0;
    const wrong: number[] = [];
    await Promise.all(
      Array.from({ length: BATCHES_IN_FLIGHT }, async () => {
        for (let batch = next++; batch < count; batch = next++) {
          const pks = Array.from({ length: ROWS_PER_BATCH }, (_, row) => batch * ROWS_PER_BATCH + row);
          const result = await client.execute(select, [pks, batch], { prepare: true, isIdempotent: true, consistency: cassandra.types.consistencies.quorum });
          const found = new Map(result.rows.map((r) => [r['pk'] as number, r['v'] as bigint]));
          for (const pk of pks) if (found.get(pk) !== BigInt(batch)) wrong.push(pk);
        }
      }),
    );
    expect(wrong, 'rows missing or wrong at QUORUM').toEqual([]);
  }

  it('creates test keyspaces with one replica per node', async () => {
    const result = await ks.client.execute('SELECT strategy_options FROM system.schema_keyspaces WHERE keyspace_name = ?', [ks.config.scylladb.keyspace]);
    expect(JSON.parse(result.rows[0]!['strategy_options'] as string)).toEqual({ replication_factor: String(RING_NODES) });
    expect(ks.config.scylladb.replication_factor).toBe(RING_NODES);
  });

  it('takes QUORUM batches and reads with one node killed, and takes the node back', async () => {
    const wholeRate = await writeBatches(0, BATCHES_PER_PHASE);
    say(`all ${RING_NODES} nodes up: ${BATCHES_PER_PHASE} LOGGED batches of ${ROWS_PER_BATCH} rows at QUORUM, ${wholeRate.toFixed(0)} batches/s`);

    const killed = ring.killNode(VICTIM_NODE);
    say(`kill -9 of node ${VICTIM_NODE} (java pid ${killed})`);
    const downRate = await writeBatches(BATCHES_PER_PHASE, BATCHES_PER_PHASE);
    say(`node ${VICTIM_NODE} down: ${BATCHES_PER_PHASE} batches at QUORUM, ${downRate.toFixed(0)} batches/s`);
    const readStarted = performance.now();
    await readBack(2 * BATCHES_PER_PHASE);
    say(`node ${VICTIM_NODE} down: ${2 * BATCHES_PER_PHASE * ROWS_PER_BATCH} rows read back at QUORUM in ${(performance.now() - readStarted).toFixed(0)} ms`);

    const restartStarted = performance.now();
    await ring.restartNode(VICTIM_NODE, say);
    say(`node ${VICTIM_NODE} restarted, ring whole after ${(performance.now() - restartStarted).toFixed(0)} ms`);
    expect((await ring.status()).every((n) => n.answering)).toBe(true);
    const backRate = await writeBatches(2 * BATCHES_PER_PHASE, BATCHES_PER_PHASE);
    say(`node ${VICTIM_NODE} back: ${BATCHES_PER_PHASE} batches at QUORUM, ${backRate.toFixed(0)} batches/s`);
    await readBack(3 * BATCHES_PER_PHASE);
  }, 300_000);
});
