/**
 * The dashboard's HTTP surface against real Redis and Cassandra, with the real settler and
 * reconciler running as child processes: balances after settlement equal the hand-computed
 * expectation, bad input gets a 400 naming the field, settlement queues refuse every mutation
 * through bull-board's API, reconciliation runs end to end, /metrics aggregates the workers'
 * heartbeats, and nothing but /healthz and /readyz answers without credentials.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestPositionKey } from '@settlement/domain';
import { createTestKeyspace, ROOT, testConfig, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { checkReadiness } from '../src/server/health.js';
import { basicAuth, Child, enqueueJob, funding, queueOf, startDashboardInProcess, TOKEN, trade, USER, waitFor, type InProcessDashboard } from './support.js';

const BTC = 1;
const USDT = 2;
const ALICE = 101n;
const BOB = 102n;
/** Above 2^53: must survive the API as an exact decimal string. */
const BIG_TRADE_ID = 18_446_744_073_709_551_000n;

/** Response bodies are asserted field by field; a full type per route would only restate them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

let ks: TestKeyspace;
let configFile: string;
let dashboard: InProcessDashboard;
const children: Child[] = [];

async function api(pathname: string, init: RequestInit & { auth?: string | null } = {}): Promise<{ status: number; body: Json; headers: Headers }> {
  const headers = new Headers(init.headers);
  if (init.auth !== null) headers.set('authorization', init.auth ?? `Bearer ${TOKEN}`);
  if (init.body !== undefined) headers.set('content-type', 'application/json');
  const response = await fetch(`${dashboard.url}${pathname}`, { ...init, headers });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON (metrics, HTML): keep the text.
  }
  return { status: response.status, body, headers: response.headers };
}

beforeAll(async () => {
  const config = testConfig({ dashboard: { token: TOKEN, user: USER }, reconciliation: { enabled: false, fix_wait_ms: 2_000 } });
  ks = await createTestKeyspace(config);
  const dir = path.join(ROOT, 'data', 'test', config.scylladb.keyspace);
  configFile = writeConfigFile(config, path.join(dir, 'settlement.yaml'));
  children.push(new Child('settler', configFile, path.join(dir, 'settler.log')));
  children.push(new Child('reconciler', configFile, path.join(dir, 'reconciler.log')));
  dashboard = await startDashboardInProcess(config);

  // Funding: Alice deposits 2 BTC and locks 1 to sell; Bob deposits 100 000 USDT and locks 50 000.
  await enqueueJob(queueOf(dashboard.ops, 'funding'), 'funding', 0n, [
    funding(1n, ALICE, 'DEPOSIT', 200_000_000n, BTC),
    funding(2n, BOB, 'DEPOSIT', 100_000_000_000n, USDT),
    funding(3n, ALICE, 'LOCK', 100_000_000n, BTC),
    funding(4n, BOB, 'LOCK', 50_000_000_000n, USDT),
  ]);
  // Bob buys 0.5 BTC from Alice at 30 000 USDT: 15 000 USDT.
  await enqueueJob(queueOf(dashboard.ops, 'btc_usdt'), 'btc_usdt', 0n, [
    trade(1n, { tradeId: BIG_TRADE_ID, buyerUserId: BOB, sellerUserId: ALICE, price: 30_000_000_000n, quantity: 50_000_000n, quoteAmount: 15_000_000_000n }),
  ]);
  await dashboard.ops.redis.hset(ingestPositionKey(config.redis.prefix), 'funding', '4', 'btc_usdt', '7');
  await waitFor(
    'both shards settled',
    async () => {
      const marks = await dashboard.ops.watermarks.list();
      const seq = (shard: string) => marks.find((m) => m.shard === shard)?.lastSeq ?? 0n;
      return seq('funding') >= 4n && seq('btc_usdt') >= 1n;
    },
    45_000,
  );
}, 90_000);

afterAll(async () => {
  await Promise.all(children.map((c) => c.stop()));
  await dashboard?.close();
  await ks?.drop();
});

describe('JSON API', () => {
  it('returns balances equal to the expectation, as exact decimal strings', async () => {
    const alice = await api(`/v1/users/${ALICE}/balances`);
    expect(alice.status).toBe(200);
    expect(alice.body.userId).toBe('101');
    const byAsset = (body: Json) => Object.fromEntries(body.balances.map((b: Json) => [b.asset, [b.available, b.frozen, b.total]]));
    // 2 BTC − 1 locked; 1 locked − 0.5 sold; +15 000 USDT.
    expect(byAsset(alice.body)).toEqual({ BTC: ['100000000', '50000000', '150000000'], USDT: ['15000000000', '0', '15000000000'] });
    expect(alice.body.balances[0].display).toEqual({ available: '1.00000000', frozen: '0.50000000', total: '1.50000000' });

    const bob = await api(`/v1/users/${BOB}/balances`);
    // 100 000 − 50 000 locked; 50 000 locked − 15 000 paid; +0.5 BTC.
    expect(byAsset(bob.body)).toEqual({ BTC: ['50000000', '0', '50000000'], USDT: ['50000000000', '35000000000', '85000000000'] });

    const nobody = await api('/v1/users/999/balances');
    expect(nobody.status).toBe(200);
    expect(nobody.body.balances).toEqual([]);
  });

  it('returns a settled trade with its u64 id intact, and 404 for an unknown one', async () => {
    const found = await api(`/v1/trades/btc_usdt/${BIG_TRADE_ID}`);
    expect(found.status).toBe(200);
    expect(found.body.trade).toMatchObject({ symbol: 'btc_usdt', tradeId: BIG_TRADE_ID.toString(), buyerUserId: '102', sellerUserId: '101', quoteAmount: '15000000000' });
    expect(found.body.trade.display).toEqual({ price: '30000.000000', quantity: '0.50000000', quoteAmount: '15000.000000' });

    const missing = await api('/v1/trades/btc_usdt/12345');
    expect(missing.status).toBe(404);
    expect(missing.body.error.message).toBe('trade 12345 of btc_usdt not found');
  });

  it('rejects bad ids with 400 and a message naming the field and the value', async () => {
    const user = await api('/v1/users/abc/balances');
    expect(user.status).toBe(400);
    expect(user.body.error).toEqual({ code: 'INVALID_INPUT', field: 'userId', message: 'Invalid request: userId: must be a decimal user id (1-19 digits) (got "abc")' });

    const tooBig = await api('/v1/users/9223372036854775808/balances');
    expect(tooBig.status).toBe(400);
    expect(tooBig.body.error.message).toContain('userId: must be at most 2^63-1');

    const symbol = await api('/v1/trades/doge_usdt/1');
    expect(symbol.status).toBe(400);
    expect(symbol.body.error.field).toBe('symbol');
    expect(symbol.body.error.message).toContain('must be a configured symbol: btc_usdt, eth_usdt, btc_eth');

    const tradeId = await api('/v1/trades/btc_usdt/-1');
    expect(tradeId.status).toBe(400);
    expect(tradeId.body.error.field).toBe('tradeId');

    const job = await api('/v1/reconciliations/a:b');
    expect(job.status).toBe(400);
    expect(job.body.error.field).toBe('id');
  });

  it('reports per-shard sequence, lag and queue depth', async () => {
    const { status, body } = await api('/v1/shards');
    expect(status).toBe(200);
    const byShard = Object.fromEntries(body.shards.map((s: Json) => [s.shard, s]));
    expect(Object.keys(byShard)).toEqual(['btc_usdt', 'eth_usdt', 'btc_eth', 'funding']);
    expect(byShard.funding).toMatchObject({ appliedSeq: '4', enqueuedSeq: '4', lag: '0', depth: 0 });
    // The ingestor's hash says 7 was enqueued on btc_usdt; 1 is applied.
    expect(byShard.btc_usdt).toMatchObject({ appliedSeq: '1', enqueuedSeq: '7', lag: '6' });
    expect(byShard.btc_usdt.jobs.completed).toBe(1);
    expect(byShard.btc_usdt.workers).toBeGreaterThanOrEqual(1);
    expect(byShard.eth_usdt).toMatchObject({ appliedSeq: null, enqueuedSeq: null, lag: '0' });
  });

  it('names the settler process settling each shard (from its heartbeat)', async () => {
    // The one settler holds every shard's lease; its heartbeat says so within one interval.
    const shards = await waitFor(
      'a heartbeat naming the shards the settler holds',
      async () => {
        const { body } = await api('/v1/shards');
        const list = body.shards as Json[];
        return list.every((s: Json) => s.settledBy.length === 1) ? list : undefined;
      },
      20_000,
    );
    const names = new Set(shards.map((s: Json) => s.settledBy[0]));
    expect(names.size).toBe(1);
    expect([...names][0]).toMatch(/^.+:\d+$/);
  });

  it('enqueues a reconciliation, which the reconciler completes without errors', async () => {
    const posted = await api('/v1/reconciliations', { method: 'POST', body: JSON.stringify({ mode: 'users', userIds: ['101', '102'] }) });
    expect(posted.status).toBe(202);
    expect(posted.headers.get('location')).toBe(`/v1/reconciliations/${posted.body.id}`);
    expect(posted.body.data).toEqual({ mode: 'users', userIds: ['101', '102'], fix: false, trigger: 'api' });
    const done = await waitFor(
      'reconciliation finished',
      async () => {
        const { body } = await api(`/v1/reconciliations/${posted.body.id}`);
        return body.state === 'completed' && body.record?.status === 'completed' ? body : undefined;
      },
      30_000,
    );
    expect(done.record).toMatchObject({ mode: 'users', trigger: 'api', usersChecked: 2, errors: 0 });

    const unknown = await api('/v1/reconciliations/no-such-job');
    expect(unknown.status).toBe(404);
  });

  it('rejects a bad reconcile request with 400 naming the field', async () => {
    const badUser = await api('/v1/reconciliations', { method: 'POST', body: JSON.stringify({ mode: 'users', userIds: ['42', 'x'] }) });
    expect(badUser.status).toBe(400);
    expect(badUser.body.error.field).toBe('userIds.1');
    expect(badUser.body.error.message).toContain('userIds.1: must be a decimal user id');

    const badMode = await api('/v1/reconciliations', { method: 'POST', body: JSON.stringify({ mode: 'everything' }) });
    expect(badMode.status).toBe(400);
    expect(badMode.body.error.message).toContain('mode must be one of sample, users, full');

    const notJson = await api('/v1/reconciliations', { method: 'POST', body: '{"mode":' });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.field).toBe('(body)');
  });
});

describe('bull-board', () => {
  const board = (route: string, method = 'PUT', body?: unknown) =>
    api(`/queues/api/queues/${route}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it('lists every settlement queue read-only and the reconcile queue writable, with counts', async () => {
    const { status, body } = await api('/queues/api/queues?activeQueue=settle-btc_usdt&status=completed');
    expect(status).toBe(200);
    const queues = Object.fromEntries(body.queues.map((q: Json) => [q.name, q]));
    for (const shard of ['btc_usdt', 'eth_usdt', 'btc_eth', 'funding']) expect(queues[`settle-${shard}`].readOnlyMode).toBe(true);
    expect(queues.reconcile.readOnlyMode).toBe(false);
    expect(queues['settle-btc_usdt'].counts.completed).toBe(1);
    expect(queues['settle-funding'].counts.completed).toBe(1);
  });

  it('refuses retry, clean, delete, add, pause and empty on a settlement queue (405)', async () => {
    const queue = 'settle-btc_usdt';
    const jobId = 'btc_usdt-1-1';
    const attempts = await Promise.all([
      board(`${queue}/retry/failed`),
      board(`${queue}/retry/completed`),
      board(`${queue}/clean/completed`),
      board(`${queue}/${jobId}/retry`),
      board(`${queue}/${jobId}/clean`),
      board(`${queue}/add`, 'POST', { name: 'settle', data: {}, options: {} }),
      board(`${queue}/pause`),
      board(`${queue}/empty`),
      board(`${queue}/obliterate`),
      board(`${queue}/${jobId}/update-data`, 'PATCH', { jobData: {} }),
    ]);
    expect(attempts.map((a) => a.status)).toEqual(Array(attempts.length).fill(405));
    expect(attempts[0]!.body.error.key).toBe('ERRORS.QUEUE_READ_ONLY');
    // The job is still there, completed and untouched.
    const job = await queueOf(dashboard.ops, 'btc_usdt').getJob(jobId);
    expect(await job?.getState()).toBe('completed');
    // Reading a job stays allowed.
    expect((await board(`${queue}/${jobId}`, 'GET')).status).toBe(200);
  });

  it('accepts a reconcile job added through the UI API and runs it', async () => {
    const added = await board('reconcile/add', 'POST', { name: 'reconcile', data: { mode: 'users', userIds: ['101'] }, options: {} });
    expect(added.status).toBe(200);
    const id = added.body.job.id as string;
    const finished = await waitFor('UI-added job completed', async () => ((await api(`/v1/reconciliations/${id}`)).body.state === 'completed' ? true : undefined), 30_000);
    expect(finished).toBe(true);
  });
});

describe('authentication and health', () => {
  it('answers 401 with a Basic challenge without credentials, or with wrong ones', async () => {
    for (const pathname of ['/queues', '/queues/api/queues', '/v1/shards', `/v1/users/${ALICE}/balances`, '/metrics']) {
      const anonymous = await api(pathname, { auth: null });
      expect(anonymous.status, pathname).toBe(401);
      expect(anonymous.headers.get('www-authenticate')).toContain('Basic realm=');
    }
    expect((await api('/v1/shards', { auth: 'Bearer wrong-token-xxxxxx' })).status).toBe(401);
    expect((await api('/v1/shards', { auth: basicAuth(USER, 'wrong-token-xxxxxx') })).status).toBe(401);
    expect((await api('/v1/shards', { auth: basicAuth('admin', TOKEN) })).status).toBe(401);
    expect((await api('/v1/shards', { auth: basicAuth() })).status).toBe(200);
    expect((await api('/queues', { auth: basicAuth() })).status).toBe(200);
  });

  it('serves /healthz and /readyz without credentials; readyz checks Redis and Cassandra', async () => {
    expect((await api('/healthz', { auth: null })).body).toEqual({ status: 'ok' });
    const ready = await api('/readyz', { auth: null });
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, checks: { redis: 'ok', cassandra: 'ok' } });
  });

  it('readyz names the store that does not answer', async () => {
    // Port 1: nothing listens; no retries, so the probe fails at once.
    const deadRedis = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      const readiness = await checkReadiness({ redis: deadRedis, scylla: ks.client }, 1_000);
      expect(readiness.ready).toBe(false);
      expect(readiness.checks.cassandra).toBe('ok');
      expect(readiness.checks.redis).toMatch(/^error: /);
    } finally {
      deadRedis.disconnect();
    }
  });

  it('refuses to start on a non-loopback address without a token', () => {
    const noToken = writeConfigFile({ ...ks.config, dashboard: { ...ks.config.dashboard, token: undefined } }, path.join(path.dirname(configFile), 'no-token.yaml'));
    const started = spawnSync(process.execPath, ['--import', 'tsx', 'apps/dashboard/src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, SETTLEMENT_CONFIG: noToken, DASHBOARD_HOST: '0.0.0.0', DASHBOARD_TOKEN: '' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(started.status).toBe(1);
    expect(started.stderr).toBe('dashboard: Invalid config: dashboard.token: is required when dashboard.host (0.0.0.0) is not a loopback address\n');
  });
});

describe('/metrics', () => {
  it("aggregates the settler's and reconciler's heartbeat metrics with the dashboard's own", async () => {
    // Heartbeats are published every 5 s: wait for one sent after the work was done.
    const text = await waitFor(
      'heartbeats of settler and reconciler after the work',
      async () => {
        const { body } = await api('/metrics');
        return typeof body === 'string' && /settler_jobs_total\{/.test(body) && /reconciler_runs_total\{/.test(body) ? body : undefined;
      },
      20_000,
    );
    expect(text).toContain('settlement_instances{app="settler"} 1');
    expect(text).toContain('settlement_instances{app="reconciler"} 1');
    // From the settler's registry: the trade was applied on btc_usdt.
    expect(text).toMatch(/settler_jobs_total\{[^}]*shard="btc_usdt"[^}]*\} [1-9]/);
    expect(text).toMatch(/reconciler_runs_total\{[^}]*status="completed"[^}]*\} [1-9]/);
    // The dashboard's own registry, and queue depth read at scrape time.
    expect(text).toMatch(/settlement_dashboard_http_requests_total\{method="GET",route="\/v1\/users\/:userId\/balances",status="200"\} [1-9]/);
    expect(text).toContain('settlement_queue_jobs{queue="settle-btc_usdt",state="completed"} 1');
    // Node.js metrics of each process, one series each: the settler's and reconciler's from
    // their heartbeats (child processes), the dashboard's own (this process).
    const pids = { settler: children[0]!.process.pid, reconciler: children[1]!.process.pid, dashboard: process.pid };
    for (const [app, pid] of Object.entries(pids)) {
      const labels = `\\{app="${app}",instance="[^"]+:${pid}"\\}`;
      expect(text).toMatch(new RegExp(`^process_cpu_user_seconds_total${labels} \\d`, 'm'));
      expect(text).toMatch(new RegExp(`^nodejs_eventloop_lag_p99_seconds${labels} \\d`, 'm'));
      expect(text).toMatch(new RegExp(`^nodejs_heap_size_used_bytes${labels} [1-9]`, 'm'));
    }
  });
});
