/**
 * Dead letters have a deterministic identity (issue 18.5), real Cassandra: the same bad frame or
 * message dead-lettered again (a replayed frame, a re-delivered or re-applied job) overwrites
 * its row instead of adding one, so the list and the counts match the distinct letters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import cassandra from 'cassandra-driver';
import { createTestKeyspace, type TestKeyspace } from '@settlement/testing';
import { DeadLetterRepository, deadLetterId, type DeadLetter } from './dead-letters.js';
import { SettlementWriter, executeSettlementBatch, type SettlementBatchRows } from './settlement-writer.js';
import { CONSISTENCY } from './client.js';

let ks: TestKeyspace;
let repo: DeadLetterRepository;
let writer: SettlementWriter;

beforeAll(async () => {
  ks = await createTestKeyspace();
  repo = new DeadLetterRepository(ks.client, ks.config.scylladb.keyspace);
  writer = new SettlementWriter({
    client: ks.client,
    keyspace: ks.config.scylladb.keyspace,
    symbols: ks.config.symbols.map((s) => s.name),
    consistency: ks.config.scylladb.consistency,
    feeAccountUserId: ks.config.fee_account_user_id,
  });
}, 60_000);

afterAll(async () => {
  await ks?.drop();
});

async function rowCount(shard: string): Promise<number> {
  const rows = (await ks.client.execute('SELECT dead_letter_id FROM dead_letters WHERE shard = ?', [shard], { prepare: true })).rows;
  return rows.length;
}

const frame = (n: number) => `{"trade_id":${n},"price":-1}`;
const ingestorLetter = (shard: string, n: number): DeadLetter => ({ shard, source: 'ingestor', reason: 'price: must be an unsigned integer, got -1', field: 'price', raw: frame(n) });

function batch(shard: string, writeTimestampUs: bigint, jobId: string, seq: bigint): SettlementBatchRows {
  return {
    shard,
    writeTimestampUs,
    trades: [],
    fundingEvents: [],
    balanceRows: [],
    deadLetters: [{ seq, reason: `Cannot apply trade at seq ${seq}: duplicate trade_id 7`, field: 'trade_id', jobId, raw: `{"seq":"${seq}"}` }],
    watermark: { lastSeq: seq, batchCount: 1n, jobId, updatedAt: new Date() },
  };
}

describe('dead letter identity', () => {
  it('keeps one row for the same bad frame dead-lettered twice by the ingestor', async () => {
    await repo.add(ingestorLetter('dl_ingest', 1));
    await repo.add(ingestorLetter('dl_ingest', 1));
    await repo.add(ingestorLetter('dl_ingest', 2));
    expect(await rowCount('dl_ingest')).toBe(2);
    expect((await repo.list('dl_ingest')).map((l) => l.raw).sort()).toEqual([frame(1), frame(2)]);
  });

  it('keeps one row for a message the settler dead-letters again in a rebuilt batch (another job, another timestamp)', async () => {
    const consistency = CONSISTENCY[ks.config.scylladb.consistency];
    await executeSettlementBatch(ks.client, writer.buildStatements(batch('dl_settle', 1_000n, 'dl_settle-1-5', 5n)), { consistency });
    await executeSettlementBatch(ks.client, writer.buildStatements(batch('dl_settle', 2_000n, 'dl_settle-5-9', 5n)), { consistency });
    await executeSettlementBatch(ks.client, writer.buildStatements(batch('dl_settle', 3_000n, 'dl_settle-6-6', 6n)), { consistency });
    expect(await rowCount('dl_settle')).toBe(2);
    const listed = await repo.list('dl_settle');
    expect(listed.map((l) => l.seq).sort()).toEqual([5n, 6n]);
    // The later write wins: the row says which job dead-lettered it last.
    expect(listed.find((l) => l.seq === 5n)?.jobId).toBe('dl_settle-5-9');
  });

  it('keeps one row for a job the settler dead-letters whole twice (a re-delivered job)', async () => {
    const letter: DeadLetter = { shard: 'dl_job', source: 'settler', reason: 'Invalid job: name: is "x"', field: 'name', jobId: 'dl_job-1-1', raw: '{"v":2}' };
    for (let i = 0; i < 2; i += 1) {
      const { query, params } = repo.insertStatement(letter);
      await ks.client.execute(query, params, { prepare: true });
    }
    await repo.add({ ...letter, jobId: 'dl_job-2-2' });
    expect(await rowCount('dl_job')).toBe(2);
  });

  it('uses a version-1 UUID that Cassandra accepts as a timeuuid, the same for the same letter only', () => {
    const id = deadLetterId(ingestorLetter('s', 1));
    expect(id.toString()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-1[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(deadLetterId(ingestorLetter('s', 1)).equals(id)).toBe(true);
    // Identity: source, shard, and the sequence (a message) or the job and raw text (a frame, a job).
    expect(deadLetterId(ingestorLetter('t', 1)).equals(id)).toBe(false);
    expect(deadLetterId(ingestorLetter('s', 2)).equals(id)).toBe(false);
    expect(deadLetterId({ ...ingestorLetter('s', 1), source: 'settler' }).equals(id)).toBe(false);
    const sameFrameOtherReason: DeadLetter = { ...ingestorLetter('s', 1), reason: 'another reason' };
    expect(deadLetterId(sameFrameOtherReason).equals(id)).toBe(true);
    const message = { shard: 's', source: 'settler' as const, reason: 'r', field: undefined, seq: 9n, jobId: 'a', raw: 'x' };
    expect(deadLetterId({ ...message, jobId: 'b', raw: 'x…(truncated)' }).equals(deadLetterId(message))).toBe(true);
    expect(deadLetterId({ ...message, seq: 10n }).equals(deadLetterId(message))).toBe(false);
  });

  it('lists newest first, and counts rows written before ids were deterministic once per letter', async () => {
    // Two copies of one frame and one of another, as stored before (fresh timeuuids, no created_at).
    const legacy = 'INSERT INTO dead_letters (shard, dead_letter_id, source, reason, field, seq, job_id, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';
    const old = (n: number, at: Date) => [
      'dl_legacy', cassandra.types.TimeUuid.fromDate(at), 'ingestor', 'price: bad', 'price', null, null, frame(n),
    ];
    await ks.client.execute(legacy, old(1, new Date('2026-12-01T10:00:00Z')), { prepare: true });
    await ks.client.execute(legacy, old(1, new Date('2026-12-01T11:00:00Z')), { prepare: true });
    await ks.client.execute(legacy, old(2, new Date('2026-12-01T10:30:00Z')), { prepare: true });
    await repo.add(ingestorLetter('dl_legacy', 3));
    await repo.add(ingestorLetter('dl_legacy', 1));
    const listed = await repo.list('dl_legacy');
    // frame 1 now (the new row), frame 3 just before, frame 2 from the old rows.
    expect(listed.map((l) => l.raw)).toEqual([frame(1), frame(3), frame(2)]);
    expect(listed[0]!.id).toBe(deadLetterId(ingestorLetter('dl_legacy', 1)).toString());
    expect(listed[2]!.createdAt).toEqual(new Date('2026-12-01T10:30:00Z'));
    expect(Date.now() - listed[0]!.createdAt!.getTime()).toBeLessThan(60_000);
    expect(await repo.list('dl_legacy', 2)).toEqual(listed.slice(0, 2));
  });
});
