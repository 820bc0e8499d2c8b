/**
 * The `settle` CLI as an operator runs it (node apps/dashboard/bin/settle.mjs, through tsx),
 * against real Redis, Cassandra and ZeroMQ with the real settler and reconciler as child
 * processes: output of each command, exit codes for bad input, missing things, outages, a
 * waited reconciliation with its progress bar, dead-letter replay onto a ZeroMQ socket, schema.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pull } from 'zeromq';
import { createScyllaClient, scyllaOptionsFromConfig } from '@settlement/scylla';
import { createTestKeyspace, ROOT, testConfig, uniqueName, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { ExitCode } from '../src/cli/exit-codes.js';
import { Child, enqueueJob, funding, queueOf, startDashboardInProcess, trade, waitFor, type InProcessDashboard, runSettle } from './support.js';


let ks: TestKeyspace;
let dashboard: InProcessDashboard;
let configFile: string;
let dir: string;
const children: Child[] = [];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

const settle = (args: readonly string[], options: { config?: string } = {}): Promise<Run> => runSettle(options.config ?? configFile, args);

beforeAll(async () => {
  const config = testConfig({ reconciliation: { enabled: false } });
  ks = await createTestKeyspace(config);
  dir = path.join(ROOT, 'data', 'test', config.scylladb.keyspace);
  configFile = writeConfigFile(config, path.join(dir, 'settlement.yaml'));
  children.push(new Child('settler', configFile, path.join(dir, 'settler.log')));
  children.push(new Child('reconciler', configFile, path.join(dir, 'reconciler.log')));
  // Only for its connections and queues: the CLI itself runs as a separate process.
  dashboard = await startDashboardInProcess(config);
  await enqueueJob(queueOf(dashboard.ops, 'funding'), 'funding', 0n, [funding(1n, 7n, 'DEPOSIT', 250_000_000n, 1), funding(2n, 8n, 'DEPOSIT', 3_000_000n, 2)]);
  await enqueueJob(queueOf(dashboard.ops, 'btc_usdt'), 'btc_usdt', 0n, [
    trade(1n, { tradeId: 555n, buyerUserId: 8n, sellerUserId: 7n, price: 20_000_000_000n, quantity: 10_000n, quoteAmount: 2_000_000n }),
  ]);
  await waitFor(
    'settled',
    async () => {
      const marks = await dashboard.ops.watermarks.list();
      return marks.some((m) => m.shard === 'funding' && m.lastSeq >= 2n) && marks.some((m) => m.shard === 'btc_usdt' && m.lastSeq >= 1n);
    },
    45_000,
  );
}, 90_000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop()));
  await dashboard?.close();
  await ks?.drop();
});

describe('settle', () => {
  it('balances: a table, or JSON with --json', async () => {
    const table = await settle(['balances', '7']);
    expect(table.code).toBe(ExitCode.OK);
    // 2.5 BTC deposited, 0.0001 BTC sold (locked side goes negative: the engine's lock was not sent).
    expect(table.stdout).toMatch(/^user 7$/m);
    expect(table.stdout).toMatch(/^BTC\s+2\.50000000\s+-0\.00010000\s+2\.49990000\s+250000000\/-10000$/m);
    expect(table.stdout).toMatch(/^USDT\s+2\.000000\s+0\.000000\s+2\.000000/m);

    const json = await settle(['--json', 'balances', '8']);
    expect(json.code).toBe(ExitCode.OK);
    const body = JSON.parse(json.stdout) as { userId: string; balances: Array<{ asset: string; available: string; frozen: string }> };
    expect(body.userId).toBe('8');
    expect(body.balances.map((b) => [b.asset, b.available, b.frozen])).toEqual([
      ['BTC', '10000', '0'],
      ['USDT', '3000000', '-2000000'],
    ]);
  });

  it('trade and shards', async () => {
    const found = await settle(['trade', 'btc_usdt', '555']);
    expect(found.code).toBe(ExitCode.OK);
    expect(found.stdout).toMatch(/^tradeId\s+555$/m);
    expect(found.stdout).toMatch(/^quoteAmount\s+2000000$/m);

    const shards = await settle(['shards']);
    expect(shards.code).toBe(ExitCode.OK);
    // …, workers, settled by (host:pid, or - with no settler running), last batch.
    expect(shards.stdout).toMatch(/^btc_usdt\s+1\s+-\s+0\s+0\s+0\s+0\s+1\s+\d+\s+\S+\s+\d{4}-/m);
    expect(shards.stdout).toMatch(/^funding\s+2\s/m);
  });

  it('exit codes: 2 for bad input, 3 for not found, 1 for an outage, 2 for a bad config', async () => {
    const badUser = await settle(['balances', '12x']);
    expect(badUser.code).toBe(ExitCode.USAGE);
    expect(badUser.stderr).toBe('settle: Invalid arguments: userId: must be a decimal user id (1-19 digits) (got "12x")\n');

    const badSymbol = await settle(['trade', 'BTC-USDT', '1']);
    expect(badSymbol.code).toBe(ExitCode.USAGE);
    expect(badSymbol.stderr).toContain('symbol: must be a configured symbol');

    const missing = await settle(['trade', 'btc_usdt', '556']);
    expect(missing.code).toBe(ExitCode.NOT_FOUND);
    expect(missing.stderr).toBe('settle: trade 556 of btc_usdt not found\n');

    const unknownCommand = await settle(['balance', '7']);
    expect(unknownCommand.code).toBe(ExitCode.USAGE);
    expect(unknownCommand.stderr).toContain("unknown command 'balance'");

    const conflicting = await settle(['reconcile', '--users', '7', '--full']);
    expect(conflicting.code).toBe(ExitCode.USAGE);
    expect(conflicting.stderr).toContain("option '--users <ids>' cannot be used with option '--full'");

    const zeroSample = await settle(['reconcile', '--sample', '0']);
    expect(zeroSample.code).toBe(ExitCode.USAGE);
    expect(zeroSample.stderr).toContain('--sample must be an integer from 1 to 1000000, got "0"');

    // Port 1: nothing listens there.
    const noRedis = writeConfigFile({ ...ks.config, redis: { ...ks.config.redis, url: 'redis://127.0.0.1:1' } }, path.join(dir, 'no-redis.yaml'));
    const outage = await settle(['shards'], { config: noRedis });
    expect(outage.code).toBe(ExitCode.FAILURE);
    expect(outage.stderr).toMatch(/^settle: cannot reach Redis at redis:\/\/127\.0\.0\.1:1 /);

    const noConfig = await settle(['shards'], { config: path.join(dir, 'absent.yaml') });
    expect(noConfig.code).toBe(ExitCode.USAGE);
    expect(noConfig.stderr).toContain('Invalid config: cannot read');
  });

  it('reconcile --wait: shows progress and ends with the run summary', async () => {
    const run = await settle(['reconcile', '--users', '7,8', '--wait', '--timeout', '60']);
    // Balances went negative (trades without locks): the run finds breaks, exit 4 says so.
    expect(run.stderr).toMatch(/^enqueued reconciliation \d+ \(2 user\(s\)\)$/m);
    expect(run.stderr).toMatch(/\[#{30}\] 100% completed/);
    expect(run.stdout).toMatch(/^reconciliation \d+: completed \(record: completed\)$/m);
    expect(run.stdout).toMatch(/users checked 2, rows checked \d+, balance errors \d+/);
    const errors = Number(/balance errors (\d+)/.exec(run.stdout)?.[1]);
    expect(run.code).toBe(errors > 0 ? ExitCode.RECONCILE_ERRORS_FOUND : ExitCode.OK);
    expect(errors).toBeGreaterThan(0);

    const clean = await settle(['reconcile', '--users', '9', '--wait']);
    expect(clean.code).toBe(ExitCode.OK);
    expect(clean.stdout).toMatch(/balance errors 0/);

    const queued = await settle(['--json', 'reconcile', '--sample', '5', '--fix']);
    expect(queued.code).toBe(ExitCode.OK);
    expect(JSON.parse(queued.stdout).data).toEqual({ mode: 'sample', size: 5, fix: true, trigger: 'cli' });
  });

  it('reconcile-status lists the errors found: kind, user, asset, shard, expected vs stored; --json too', async () => {
    // User 10 gets 1 BTC on the funding shard, then its stored row is corrupted by +12345 minor
    // units above the settler's own write timestamp (fenced, not a wall clock): a million µs
    // above, not one. Seen twice in CI: the corrupted row was gone by the time the reconciliation
    // read it, i.e. a later settler write of that row (stamped 16 above the last, by design: an
    // out-of-band write just above a row loses to the next batch) had overwritten it, e.g. the
    // watermark's job applied again after a node event of the driver.
    await enqueueJob(queueOf(dashboard.ops, 'funding'), 'funding', 2n, [funding(3n, 10n, 'DEPOSIT', 100_000_000n, 1)]);
    await waitFor('user 10 settled', async () => (await dashboard.ops.watermarks.list()).some((m) => m.shard === 'funding' && m.lastSeq >= 3n), 30_000);
    const scylla = dashboard.ops.scylla;
    const key = [10n, 1, 'funding'];
    const written = (await scylla.execute('SELECT WRITETIME(available) AS wt FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', key, { prepare: true })).first()!['wt'] as bigint;
    await scylla.execute('UPDATE user_balances USING TIMESTAMP ? SET available = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [written + 1_000_000n, 100_012_345n, ...key], { prepare: true });

    const run = await settle(['reconcile', '--users', '10', '--wait', '--timeout', '60']);
    // The output says what the run found, should it not be the corrupted row.
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(ExitCode.RECONCILE_ERRORS_FOUND);
    const id = /^enqueued reconciliation (\d+) /m.exec(run.stderr)?.[1];
    expect(id).toBeDefined();

    const status = await settle(['reconcile-status', id!]);
    expect(status.code).toBe(ExitCode.OK);
    expect(status.stdout).toMatch(/balance errors 1,/);
    expect(status.stdout).toMatch(/^kind\s+user\s+asset\s+shard\s+expected available\s+stored available\s+expected frozen\s+stored frozen\s+fixed\s+message$/m);
    expect(status.stdout).toMatch(/^balance_mismatch\s+10\s+BTC\s+funding\s+1\.00000000\s+1\.00012345\s+0\.00000000\s+0\.00000000\s+no\s+\S/m);

    const json = await settle(['--json', 'reconcile-status', id!]);
    expect(json.code).toBe(ExitCode.OK);
    const body = JSON.parse(json.stdout) as { id: string; record: { errors: number }; findingsTruncated: boolean; findings: Array<Record<string, unknown>> };
    expect(body.id).toBe(id);
    expect(body.record.errors).toBe(1);
    expect(body.findingsTruncated).toBe(false);
    expect(body.findings).toHaveLength(1);
    expect(body.findings[0]).toMatchObject({
      kind: 'balance_mismatch',
      error: true,
      userId: '10',
      assetId: 1,
      asset: 'BTC',
      shard: 'funding',
      expected: { available: '100000000', frozen: '0' },
      stored: { available: '100012345', frozen: '0' },
      difference: { available: '12345', frozen: '0' },
      fixed: false,
    });

    // A run that found nothing says so; an unknown id is "not found" (exit 3).
    const clean = await settle(['reconcile', '--users', '9', '--wait']);
    const cleanId = /^enqueued reconciliation (\d+) /m.exec(clean.stderr)?.[1];
    expect((await settle(['reconcile-status', cleanId!])).stdout).toContain('no errors or warnings recorded');
    expect((await settle(['reconcile-status', '999999'])).code).toBe(ExitCode.NOT_FOUND);
  });

  it('dead-letters list and replay onto the ingestor endpoint (a real ZeroMQ PULL socket)', async () => {
    const raw = '{"trade_id": 77, "base_asset": 9, "quote_asset": 2}';
    await dashboard.ops.deadLetters.add({ shard: 'unrouted', source: 'ingestor', reason: 'Invalid trade: base_asset: unknown asset 9', field: 'base_asset', raw });
    const list = await settle(['dead-letters', 'list']);
    expect(list.code).toBe(ExitCode.OK);
    expect(list.stdout).toMatch(/unrouted\s+ingestor\s+-\s+base_asset\s+Invalid trade: base_asset: unknown asset 9/);
    const id = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s/m.exec(list.stdout)?.[1];
    expect(id).toBeDefined();
    expect((await settle(['dead-letters', 'list', '--shard', 'btc_usdt'])).stdout).toBe('no dead letters\n');
    expect((await settle(['dead-letters', 'list', '--shard', 'nope'])).code).toBe(ExitCode.USAGE);
    expect((await settle(['dead-letters', 'replay'])).code).toBe(ExitCode.USAGE);

    const pull = new Pull();
    await pull.bind('tcp://127.0.0.1:*');
    const endpoint = pull.lastEndpoint!;
    try {
      const dry = await settle(['dead-letters', 'replay', '--shard', 'unrouted', '--endpoint', endpoint, '--dry-run']);
      expect(dry.stdout).toBe(`would send 1 dead letter(s) to ${endpoint}: ${id}\n`);
      const received = pull.receive();
      const replay = await settle(['dead-letters', 'replay', '--id', id!, '--endpoint', endpoint]);
      expect(replay.code).toBe(ExitCode.OK);
      expect(replay.stdout).toContain(`sent 1 dead letter(s) to the ingestor at ${endpoint}`);
      const [frame] = await Promise.race([
        received,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the replayed frame did not arrive within 15 s')), 15_000).unref()),
      ]);
      expect(frame!.toString()).toBe(raw);
      expect((await settle(['dead-letters', 'replay', '--id', '00000000-0000-1000-8000-000000000000', '--endpoint', endpoint])).code).toBe(ExitCode.NOT_FOUND);
    } finally {
      pull.close();
    }
  });

  it('schema: creates a keyspace with every migration, then finds nothing to do', async () => {
    const keyspace = uniqueName('t_schema_');
    const fresh = writeConfigFile(testConfig({}, { keyspace }), path.join(dir, 'schema.yaml'));
    try {
      const first = await settle(['schema'], { config: fresh });
      expect(first.code).toBe(ExitCode.OK);
      expect(first.stdout).toMatch(new RegExp(`^keyspace ${keyspace}: [1-9]\\d* migration\\(s\\) applied, 0 already there$`, 'm'));
      const second = await settle(['schema'], { config: fresh });
      expect(second.stdout).toMatch(new RegExp(`^keyspace ${keyspace}: 0 migration\\(s\\) applied, [1-9]\\d* already there$`, 'm'));
    } finally {
      const admin = createScyllaClient({ ...scyllaOptionsFromConfig(ks.config), keyspace: undefined });
      await admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
      await admin.shutdown();
    }
  });
});
