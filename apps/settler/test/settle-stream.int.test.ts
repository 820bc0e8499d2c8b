/**
 * The settler against real Redis and Cassandra: a 20,000-message stream settles to exactly the
 * independently computed balances; redelivered jobs, a replay of the whole stream, a reused
 * trade id and a write that applied but reported a timeout change nothing twice; messages that
 * can never apply are dead-lettered while the rest of their shard settles.
 */
import cassandra from 'cassandra-driver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKeyspace } from '@settlement/testing';
import { CORRECT_JOB_NAME, FUNDING_SHARD, I64_MAX, MarketCatalog, SETTLE_JOB_NAME, encodeSettlementJob, ingestPositionKey, type SettlementMessage, type TradeMessage } from '@settlement/domain';
import { createLogger } from '@settlement/runtime';
import { BalanceRepository, DeadLetterRepository, TradeRepository, WatermarkRepository, UserHistoryReader } from '@settlement/scylla';
import { startSettler, type RunningSettler } from '../src/index.js';
import { enqueue, expectBalances, expectConservation, waitFor, waitForDrained, waitForWatermarks, openTestBed, type TestBed } from './harness.js';
import { expectedBalances, generateStream, toJobs, type Expected, type GeneratedStream } from './stream-generator.js';

let ks: TestKeyspace;
let catalog: MarketCatalog;
let bed: TestBed;
let redis: TestBed['redis'];
let queues: TestBed['queues'];
let balances: BalanceRepository;
let watermarks: WatermarkRepository;
let stream: GeneratedStream;
let expected: Expected;
let settler: RunningSettler | undefined;
/** Every message enqueued that must have applied, for the expected balances. */
const applied: SettlementMessage[] = [];
const lastSeq = new Map<string, bigint>();
/** Users outside the generated stream that some tests add. */
const extraUsers: bigint[] = [];

const logger = () => createLogger({ app: 'settler-test', level: ks.config.log_level });

beforeAll(async () => {
  bed = await openTestBed();
  ({ ks, catalog, redis, queues, balances, watermarks } = bed);
  stream = generateStream({ catalog, messages: 20_000, users: 300, seed: 42 });
  for (const [shard, seq] of stream.lastSeqByShard) lastSeq.set(shard, seq);
  applied.push(...stream.messages);
});

afterAll(async () => {
  await settler?.close();
  await bed?.close();
});

function recompute(): Expected {
  return expectedBalances(applied, catalog.feeAccountUserId);
}

async function checkAll(): Promise<void> {
  expected = recompute();
  const users = [...stream.users, ...extraUsers, catalog.feeAccountUserId];
  const checked = await expectBalances(balances, expected, users);
  expect(checked).toBeGreaterThan(stream.users.length * 3);
  await expectConservation(balances, expected.supply);
}

async function failedCount(): Promise<number> {
  let n = 0;
  for (const queue of queues.values()) n += await queue.getFailedCount();
  return n;
}

describe('settler on a 20,000-message stream', () => {
  it('settles every shard to exactly the expected balances, conserving every asset', async () => {
    const jobs = toJobs(stream.messages, 50);
    await enqueue(queues, jobs);
    settler = await startSettler({ config: ks.config, logger: logger(), heartbeatIntervalMs: 500 });
    await waitForWatermarks(watermarks, lastSeq, 80_000);
    await checkAll();
    expect(await failedCount()).toBe(0);
    for (const shard of catalog.shards) expect(await new DeadLetterRepository(ks.client, ks.config.scylladb.keyspace).list(shard)).toEqual([]);

    // Spot-check the rows the reconciler relies on: a trade and its per-party history.
    const trade = stream.messages.find((m): m is TradeMessage => m.kind === 'trade' && m.buyerFee > 0n && m.buyerUserId !== m.sellerUserId)!;
    const trades = new TradeRepository(ks.client, ks.config.scylladb.keyspace, catalog.shards.filter((s) => s !== FUNDING_SHARD));
    const stored = await trades.getTrade(trade.shard, trade.tradeId);
    expect(stored).toMatchObject({ tradeId: trade.tradeId, seq: trade.seq, quantity: trade.quantity, buyerQuoteVersion: trade.buyerQuoteVersion, buyOrderId: trade.buyOrderId });
    // Read as the API reads a user's history (the bucketed tables of a new keyspace).
    const history = new UserHistoryReader(ks.client, ks.config.scylladb.keyspace, catalog.shards.filter((s) => s !== FUNDING_SHARD));
    const feeRows = await history.tradesPage(catalog.feeAccountUserId, { symbol: trade.shard, limit: 5000 });
    expect(feeRows.items.find((r) => r.tradeId === trade.tradeId)).toMatchObject({ side: 'fee', buyerFee: trade.buyerFee, sellerFee: trade.sellerFee });
    const buyerRows = await history.tradesPage(trade.buyerUserId, { limit: 10 });
    expect(buyerRows.items.length).toBe(10);
    expect(buyerRows.next).toBeDefined();
    const ledger = await history.ledgerPage(trade.buyerUserId, { limit: 3 });
    expect(ledger.items.length).toBe(3);
    expect(ledger.items[0]!.seq > ledger.items[1]!.seq).toBe(true);

    const status = settler.status();
    await waitFor('status lastSeq', async () => settler!.status()[FUNDING_SHARD]!.lastSeq === lastSeq.get(FUNDING_SHARD)!.toString(), 5_000);
    expect(Object.keys(status).sort()).toEqual([...catalog.shards].sort());
    // Lag = what the ingestor says it enqueued minus the watermark, in status and metrics.
    await redis.hset(ingestPositionKey(ks.config.redis.prefix), 'btc_usdt', (lastSeq.get('btc_usdt')! + 7n).toString());
    await waitFor('lag of btc_usdt', async () => settler!.status()['btc_usdt']!.lagMessages === 7, 5_000);
    expect((await settler.metrics.lag.get()).values.find((v) => v.labels.shard === 'btc_usdt')?.value).toBe(7);
  }, 90_000);

  it('applies nothing twice when the same jobs are delivered again under new ids', async () => {
    const before = await watermarks.list();
    await enqueue(queues, toJobs(stream.messages, 50, { idSuffix: '-again' }));
    await waitForDrained(queues, 60_000);
    await checkAll();
    expect((await watermarks.list()).map((w) => [w.shard, w.lastSeq])).toEqual(before.map((w) => [w.shard, w.lastSeq]));
    expect(await failedCount()).toBe(0);
  }, 90_000);

  it('applies nothing twice when the whole stream is replayed in differently cut jobs', async () => {
    await enqueue(queues, toJobs(stream.messages, 37, { idSuffix: '-replay' }));
    await waitForDrained(queues, 60_000);
    await checkAll();
  }, 90_000);

  it('dead-letters a trade id that comes again under a new sequence, and applies it once', async () => {
    const original = stream.messages.find((m): m is TradeMessage => m.kind === 'trade' && m.shard === 'btc_usdt')!;
    const prev = lastSeq.get('btc_usdt')!;
    const again: TradeMessage = { ...original, seq: stream.nextSeq + 1n, outputSequence: stream.nextSeq + 1n };
    await enqueue(queues, [{ shard: 'btc_usdt', prevLastSeq: prev, messages: [again], jobId: `btc_usdt-dup-${again.seq}` }]);
    await waitForWatermarks(watermarks, new Map([['btc_usdt', again.seq]]), 20_000);
    lastSeq.set('btc_usdt', again.seq);
    const letters = await new DeadLetterRepository(ks.client, ks.config.scylladb.keyspace).list('btc_usdt');
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ source: 'settler', seq: again.seq, field: 'tradeId', jobId: `btc_usdt-dup-${again.seq}` });
    expect(letters[0]!.reason).toContain(`trade_id ${original.tradeId}`);
    expect(letters[0]!.reason).toContain(`already settled at seq ${original.seq}`);
    await checkAll();
  }, 60_000);

  it('dead-letters messages that can never apply while the rest of the shard settles', async () => {
    let seq = stream.nextSeq + 10n;
    // A fresh user, so the funding row is known to be positive before the overflowing deposit.
    const user = 9_000_000n;
    extraUsers.push(user);
    const deposit = (amount: bigint, currency = 1): SettlementMessage => ({
      kind: 'funding', shard: FUNDING_SHARD, seq: seq++, userId: user, sequenceId: seq, eventType: 'DEPOSIT', amount, currency, relatedId: 0n, createdAt: 1n,
    });
    const good1 = deposit(1_000n);
    const overflow = deposit(I64_MAX); // 1 000 + 2^63-1 does not fit in the row
    const good2 = deposit(2_000n, 2);
    const unknownAsset = deposit(5n, 99);
    const good3 = deposit(3_000n, 3);
    const fundingPrev = lastSeq.get(FUNDING_SHARD)!;
    await enqueue(queues, [{ shard: FUNDING_SHARD, prevLastSeq: fundingPrev, messages: [good1, overflow, good2, unknownAsset, good3], jobId: `funding-bad-${good1.seq}` }]);

    // A job with one field invalid in one message keeps its other messages.
    const good4 = deposit(4_000n);
    const broken = deposit(7n);
    const good5 = deposit(5_000n, 2);
    const data = encodeSettlementJob(FUNDING_SHARD, good3.seq, [good4, broken, good5]);
    (data.messages[1] as unknown as Record<string, unknown>)['amount'] = '-7';
    const fundingQueue = queues.get(FUNDING_SHARD)!;
    await fundingQueue.add(SETTLE_JOB_NAME, data, { jobId: `funding-partly-${good4.seq}` });
    // A payload that is not a settlement job at all: dead-lettered whole, the job completes.
    await fundingQueue.add(SETTLE_JOB_NAME, { hello: 'world' } as never, { jobId: 'funding-garbage' });
    // A trade routed to the wrong symbol's queue.
    const ethTrade = stream.messages.find((m): m is TradeMessage => m.kind === 'trade' && m.shard === 'eth_usdt')!;
    const misrouted = { ...ethTrade, shard: 'btc_usdt', seq: seq++, tradeId: 77n };
    const btcPrev = lastSeq.get('btc_usdt')!;
    await enqueue(queues, [{ shard: 'btc_usdt', prevLastSeq: btcPrev, messages: [misrouted], jobId: `btc_usdt-misrouted-${misrouted.seq}` }]);

    await waitForWatermarks(watermarks, new Map([[FUNDING_SHARD, good5.seq], ['btc_usdt', misrouted.seq]]), 20_000);
    await waitForDrained(queues, 20_000);
    lastSeq.set(FUNDING_SHARD, good5.seq);
    lastSeq.set('btc_usdt', misrouted.seq);
    applied.push(good1, good2, good3, good4, good5);

    const letters = await new DeadLetterRepository(ks.client, ks.config.scylladb.keyspace).list(FUNDING_SHARD);
    const bySeq = new Map(letters.map((l) => [l.seq?.toString() ?? 'none', l]));
    expect(bySeq.get(overflow.seq.toString())?.reason).toMatch(/does not fit in a signed 64-bit integer/);
    expect(bySeq.get(unknownAsset.seq.toString())).toMatchObject({ field: 'currency' });
    expect(bySeq.get(broken.seq.toString())).toMatchObject({ field: 'messages.1.amount' });
    expect(bySeq.get('none')).toMatchObject({ jobId: 'funding-garbage', raw: '{"hello":"world"}' });
    expect(letters).toHaveLength(4);
    const misroutedLetters = await new DeadLetterRepository(ks.client, ks.config.scylladb.keyspace).list('btc_usdt');
    expect(misroutedLetters.find((l) => l.seq === misrouted.seq)?.reason).toContain('are not those of btc_usdt');
    expect(await failedCount()).toBe(0);
    await checkAll();
  }, 60_000);

  it('applies a reconciler correction once, even when delivered twice', async () => {
    const user = stream.users[7]!;
    const correction = { v: 1, shard: FUNDING_SHARD, correctionId: 'fix-1', reconciliationJobId: 'rec-1', rows: [{ userId: user.toString(), assetId: 2, availableDelta: '-11', lockedDelta: '4' }] };
    const fundingQueue = queues.get(FUNDING_SHARD)!;
    await fundingQueue.add(CORRECT_JOB_NAME, correction, { jobId: 'fix-1-a' });
    await fundingQueue.add(CORRECT_JOB_NAME, correction, { jobId: 'fix-1-b' });
    await waitForDrained(queues, 20_000);
    // Expected: the stream's sums plus the correction, once.
    expected = recompute();
    const row = expected.rows.get(`${user}/2`)!;
    const actual = (await balances.getUserBalances(user)).find((b) => b.assetId === 2)!;
    expect([actual.available, actual.frozen]).toEqual([row.available - 11n, row.locked + 4n]);
    // Undo it so later checks hold: a second correction, with its own id.
    await fundingQueue.add(CORRECT_JOB_NAME, { ...correction, correctionId: 'fix-2', rows: [{ ...correction.rows[0]!, availableDelta: '11', lockedDelta: '-4' }] }, { jobId: 'fix-2' });
    await waitForDrained(queues, 20_000);
    await checkAll();
  }, 60_000);

  it('applies once a batch that was written but reported as a write timeout (BATCH), and goes on settling', async () => {
    await settler!.close();
    settler = undefined;
    // The real client writes the batch, then the caller is told the write timed out.
    let batches = 0;
    let injected = 0;
    const flaky = new Proxy(ks.client, {
      get(target, prop) {
        if (prop === 'batch') {
          return async (...args: Parameters<cassandra.Client['batch']>) => {
            const result = await target.batch(...args);
            if (++batches % 3 === 1 && injected < 6) {
              injected += 1;
              const error = new cassandra.errors.ResponseError(cassandra.types.responseErrorCodes.writeTimeout, 'Cassandra timeout during write query at consistency LOCAL_QUORUM (1 replica(s) acknowledged the write over 1 required)');
              Object.assign(error, { writeType: 'BATCH', received: 0, blockFor: 1 });
              throw error;
            }
            return result;
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    settler = await startSettler({ config: ks.config, logger: createLogger({ app: 'settler-test', level: 'error' }), client: flaky });
    const more = generateStream({ catalog, messages: 2_000, users: 300, seed: 7, firstSeq: stream.nextSeq + 1000n, firstTradeId: 1_000n });
    const prevByShard = new Map(lastSeq);
    await enqueue(queues, toJobs(more.messages, 50, { prevByShard }));
    for (const [shard, seq] of more.lastSeqByShard) lastSeq.set(shard, seq);
    await waitForWatermarks(watermarks, lastSeq, 60_000);
    applied.push(...more.messages);
    expect(injected).toBe(6);
    const retries = (await settler.metrics.retries.get()).values.filter((v) => v.labels.kind === 'write_timeout_batch').reduce((n, v) => n + v.value, 0);
    expect(retries).toBe(6);
    await checkAll();
    expect(await failedCount()).toBe(0);
  }, 90_000);
});
