/**
 * The overview page (/overview) in a real Chromium while a stream settles: the real settler,
 * reconciler and dashboard run as child processes, jobs flow on three shards, a fourth shard is
 * halted for real (its first job names a predecessor no job holds), a user's row is corrupted
 * and reconciled, and dead letters are stored. Every figure the page shows is checked against
 * the JSON API read just before and just after the page: sequences within that window, the
 * settler of each shard, the halt, the reconciliation's error, dead letters by reason, and the
 * balance / trade lookup. The screenshot goes to docs/overview.png when missing or with
 * UPDATE_SCREENSHOT=1.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettlementMessage } from '@settlement/domain';
import { createTestKeyspace, freePort, ROOT, testConfig, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { openOps, type Ops } from '../src/ops/context.js';
import { enqueueReconciliation } from '../src/ops/reconciliations.js';
import { basicAuth, Child, enqueueJob, funding, queueOf, TOKEN, trade, USER, waitFor } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const DOCS_SCREENSHOT = path.join(ROOT, 'docs', 'overview.png');
const JOB_MESSAGES = 20;
/** The user whose row is corrupted: outside the flow's users, so nothing settles over it. */
const CORRUPTED_USER = 7n;

let ks: TestKeyspace;
let ops: Ops;
let browser: Browser;
let baseUrl: string;
let dir: string;
const children: Child[] = [];

/** Jobs on btc_usdt, eth_usdt and funding, chained per shard, until stopped. */
class Flow {
  private readonly nextSeq = new Map<string, bigint>([['funding', 2n]]);
  private running = true;
  private loop: Promise<void> | undefined;

  constructor(private readonly queues: ReadonlyMap<string, Queue>) {}

  private messages(shard: string): SettlementMessage[] {
    const first = this.nextSeq.get(shard) ?? 1n;
    this.nextSeq.set(shard, first + BigInt(JOB_MESSAGES));
    return Array.from({ length: JOB_MESSAGES }, (_v, i) => {
      const seq = first + BigInt(i);
      const user = 1_000n + (seq % 100n);
      if (shard === 'funding') return funding(seq, user, 'DEPOSIT', 1_000_000n + seq, 2);
      return trade(seq, { shard, baseAsset: shard === 'btc_usdt' ? 1 : 3, tradeId: seq, buyerUserId: user, sellerUserId: 1_000n + ((seq + 7n) % 100n), price: 100_000_000n, quantity: 1_000n, quoteAmount: 1_000n });
    });
  }

  async burst(): Promise<void> {
    for (const [shard, queue] of this.queues) {
      const prev = (this.nextSeq.get(shard) ?? 1n) - 1n;
      await enqueueJob(queue, shard, prev, this.messages(shard));
    }
  }

  start(intervalMs: number): void {
    this.loop = (async () => {
      while (this.running) {
        await this.burst();
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}

let flow: Flow;

async function api<T>(p: string): Promise<T> {
  const res = await fetch(`${baseUrl}${p}`, { headers: { authorization: basicAuth() } });
  expect(res.status, p).toBe(200);
  return (await res.json()) as T;
}

interface ApiShard {
  shard: string;
  appliedSeq: string | null;
  enqueuedSeq: string | null;
  settledBy: string[];
  halted: { afterSeq: string; throughSeq: string; reportedBy: string } | null;
}

async function field(page: Page, shard: string, name: string): Promise<string> {
  return (await page.locator(`#shards tr[data-shard="${shard}"] td[data-field="${name}"]`).innerText()).trim();
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: tools/testing/system-deps.sh installs it`);
  const port = await freePort();
  const config = testConfig({ dashboard: { token: TOKEN, user: USER, port, overview_sample_interval_ms: 500 }, reconciliation: { enabled: false } });
  ks = await createTestKeyspace(config);
  dir = path.join(ROOT, 'data', 'test', config.scylladb.keyspace);
  const configFile = writeConfigFile(config, path.join(dir, 'settlement.yaml'));
  children.push(new Child('settler', configFile, path.join(dir, 'settler.log')));
  children.push(new Child('reconciler', configFile, path.join(dir, 'reconciler.log')));
  children.push(new Child('dashboard', configFile, path.join(dir, 'dashboard.log')));
  baseUrl = `http://127.0.0.1:${port}`;
  ops = openOps(config);
  flow = new Flow(new Map(['btc_usdt', 'eth_usdt', 'funding'].map((shard) => [shard, queueOf(ops, shard)])));
  await waitFor('dashboard ready', async () => (await fetch(`${baseUrl}/readyz`)).ok, 30_000);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 90_000);

afterAll(async () => {
  await flow?.stop();
  await browser?.close();
  await Promise.all(children.map((c) => c.stop()));
  await ops?.close();
  await ks?.drop();
});

describe('overview page in Chromium', () => {
  it('asks for credentials like the rest of the dashboard', async () => {
    for (const p of ['/overview', '/v1/overview']) expect((await fetch(`${baseUrl}${p}`)).status).toBe(401);
  });

  it('shows lag, depth, settled msg/s, settlers, the halt, reconciliation errors, dead letters and lookups, as the API does', async () => {
    // User 7: 1 BTC on the funding shard (seq 1, before the flow), then its row corrupted just
    // above the settler's own write timestamp, then reconciled: one balance_mismatch.
    await enqueueJob(queueOf(ops, 'funding'), 'funding', 0n, [funding(1n, CORRUPTED_USER, 'DEPOSIT', 100_000_000n, 1)]);
    await waitFor('user 7 settled', async () => (await ops.watermarks.list()).some((m) => m.shard === 'funding' && m.lastSeq >= 1n), 30_000);
    const key = [CORRUPTED_USER, 1, 'funding'];
    const written = (await ops.scylla.execute('SELECT WRITETIME(available) AS wt FROM user_balances WHERE user_id = ? AND asset_id = ? AND shard = ?', key, { prepare: true })).first()!['wt'] as bigint;
    await ops.scylla.execute('UPDATE user_balances USING TIMESTAMP ? SET available = ? WHERE user_id = ? AND asset_id = ? AND shard = ?', [written + 1n, 100_000_777n, ...key], { prepare: true });
    const { id: reconcileId } = await enqueueReconciliation(ops.reconcileQueue, { mode: 'users', userIds: [CORRUPTED_USER.toString()] }, 'overview-test');

    // btc_eth halts for real: its first job follows seq 5, which no job holds.
    await enqueueJob(queueOf(ops, 'btc_eth'), 'btc_eth', 5n, [trade(6n, { shard: 'btc_eth', baseAsset: 1, quoteAsset: 3, tradeId: 6n, buyerUserId: 1_001n, sellerUserId: 1_002n, price: 1n, quantity: 1n, quoteAmount: 1n })]);
    // Two dead letters with one reason, one with another.
    for (const raw of ['{"a":1}', '{"a":2}']) await ops.deadLetters.add({ shard: 'unrouted', source: 'ingestor', reason: 'Invalid trade: base_asset: unknown asset 9', field: 'base_asset', raw });
    await ops.deadLetters.add({ shard: 'unrouted', source: 'ingestor', reason: 'Invalid frame: not JSON', field: '(frame)', raw: 'x' });

    // The stream settles: a backlog, then a steady flow, sampled every 500 ms by the dashboard.
    for (let i = 0; i < 10; i++) await flow.burst();
    flow.start(100);
    await waitFor('the reconciliation to finish', async () => (await ops.reconcileQueue.getJob(reconcileId))?.finishedOn !== undefined || undefined, 60_000);
    const halted = await waitFor(
      'btc_eth reported halted',
      async () => (await api<{ shards: ApiShard[] }>('/v1/shards')).shards.find((s) => s.shard === 'btc_eth' && s.halted !== null),
      60_000,
    );
    expect(halted.halted).toMatchObject({ afterSeq: '0', throughSeq: '5' });
    await waitFor(
      'an hour chart with several btc_usdt samples',
      async () => ((await api<{ hour: Array<{ shard: string; settledPerSecond: unknown[] }> }>('/v1/overview')).hour.find((h) => h.shard === 'btc_usdt')?.settledPerSecond.length ?? 0) >= 4,
      30_000,
    );

    const context = await browser.newContext({ httpCredentials: { username: USER, password: TOKEN }, viewport: { width: 1500, height: 1300 } });
    const page = await context.newPage();
    const before = new Map((await api<{ shards: ApiShard[] }>('/v1/shards')).shards.map((s) => [s.shard, s]));
    const response = await page.goto(`${baseUrl}/overview`);
    const after = new Map((await api<{ shards: ApiShard[] }>('/v1/shards')).shards.map((s) => [s.shard, s]));
    expect(response?.status()).toBe(200);

    for (const shard of ['btc_usdt', 'eth_usdt', 'btc_eth', 'funding']) {
      const [b, a] = [before.get(shard)!, after.get(shard)!];
      const applied = await field(page, shard, 'appliedSeq');
      if (a.appliedSeq === null) expect(applied).toBe('-');
      else {
        expect(BigInt(applied)).toBeGreaterThanOrEqual(BigInt(b.appliedSeq ?? '0'));
        expect(BigInt(applied)).toBeLessThanOrEqual(BigInt(a.appliedSeq));
      }
      const enqueued = await field(page, shard, 'enqueuedSeq');
      expect(enqueued).toBe(a.enqueuedSeq ?? '-');
      expect(Number(await field(page, shard, 'lag'))).toBeGreaterThanOrEqual(0);
      expect(Number(await field(page, shard, 'depth'))).toBeGreaterThanOrEqual(0);
      // The settler process of each shard: the same host:pid the API names.
      expect(await field(page, shard, 'settledBy')).toBe(a.settledBy.length === 0 ? 'none' : a.settledBy.join(', '));
    }
    expect(after.get('btc_usdt')!.settledBy).toHaveLength(1);
    // The flow settles: a positive rate on the page where the API's watermark moves.
    expect(Number((await field(page, 'btc_usdt', 'settledPerSecond')).replace(/,/g, ''))).toBeGreaterThan(0);
    expect(Number(await page.locator('#charts svg').first().getAttribute('data-max'))).toBeGreaterThan(0);
    expect(await page.locator('#charts svg').first().locator('g[data-series="btc_usdt"] polyline').count()).toBe(1);

    // The halt: a banner first on the page, and the shard's row.
    const banner = page.locator('#halted');
    await expect.poll(() => banner.isVisible()).toBe(true);
    expect(await banner.innerText()).toContain('HALTED: shard btc_eth waits for the messages after 0 through 5');
    expect(await field(page, 'btc_eth', 'halted')).toBe('HALTED after 0 through 5');
    expect(await field(page, 'btc_usdt', 'halted')).toBe('-');

    // The reconciliation and its error, as reconcile-status has it.
    const run = page.locator(`#reconciliations tr[data-reconciliation="${reconcileId}"]`);
    expect((await run.locator('td[data-field="errors"]').innerText()).trim()).toBe('1');
    const finding = page.locator('#reconciliations tr[data-kind="balance_mismatch"]').first();
    expect((await finding.innerText()).replace(/\s+/g, ' ')).toContain('balance_mismatch 7 BTC funding 1.00000000 / 0.00000000 1.00000777 / 0.00000000 no');

    // Dead letters by reason, most frequent first.
    const reasons = await page.locator('#dead-letters tr').allInnerTexts();
    expect(reasons[1]!.replace(/\s+/g, ' ')).toMatch(/^2 unrouted base_asset Invalid trade: base_asset: unknown asset 9 /);
    expect(reasons[2]!.replace(/\s+/g, ' ')).toMatch(/^1 unrouted \(frame\) Invalid frame: not JSON /);

    await page.screenshot({ path: path.join(dir, 'overview.png'), fullPage: true });
    if (!existsSync(DOCS_SCREENSHOT) || process.env.UPDATE_SCREENSHOT === '1') {
      mkdirSync(path.dirname(DOCS_SCREENSHOT), { recursive: true });
      copyFileSync(path.join(dir, 'overview.png'), DOCS_SCREENSHOT);
    }

    // Lookup: a user's balances as /v1/users/:id/balances shows them; a trade; a bad id named.
    await page.locator('input[name="user"]').fill('7');
    await Promise.all([page.waitForURL(/user=7/), page.locator('input[name="user"]').press('Enter')]);
    const balances = await api<{ balances: Array<{ asset: string; display: { available: string; frozen: string } }> }>('/v1/users/7/balances');
    for (const b of balances.balances) {
      const row = (await page.locator(`#lookup-result tr[data-asset="${b.asset}"]`).innerText()).split('\t').map((c) => c.trim());
      expect(row.slice(0, 3)).toEqual([b.asset, b.display.available, b.display.frozen]);
    }
    await page.goto(`${baseUrl}/overview?symbol=btc_usdt&trade=3`);
    expect(await page.locator('#lookup-result caption').innerText()).toBe('trade 3 of btc_usdt');
    const tradeApi = await api<{ trade: { buyerUserId: string } }>('/v1/trades/btc_usdt/3');
    expect(await page.locator('#lookup-result tr', { hasText: 'buyerUserId' }).locator('td').innerText()).toBe(tradeApi.trade.buyerUserId);
    await page.goto(`${baseUrl}/overview?user=12x`);
    expect(await page.locator('#lookup-result').innerText()).toContain('userId: must be a decimal user id');
    await context.close();
  }, 180_000);
});
