/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core), with the real
 * settler, reconciler and dashboard as child processes and settlement jobs flowing: an
 * anonymous visit gets 401; after logging in (HTTP basic auth) the operator sees every
 * settlement queue with job counts, finds no mutating actions on them, adds a reconcile job
 * from the UI and sees it complete. The screenshot taken under load goes to the test's data
 * folder, and to docs/dashboard.png when that is missing or UPDATE_SCREENSHOT=1.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Queue } from 'bullmq';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MarketCatalog, type SettlementMessage } from '@settlement/domain';
import { createTestKeyspace, freePort, ROOT, testConfig, writeConfigFile, type TestKeyspace } from '@settlement/testing';
import { openOps, type Ops } from '../src/ops/context.js';
import { Child, enqueueJob, funding, TOKEN, trade, USER, waitFor } from './support.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const DOCS_SCREENSHOT = path.join(ROOT, 'docs', 'dashboard.png');
/** Messages per settlement job, as the ingestor's default batch. */
const JOB_MESSAGES = 50;
const USERS = 200n;

let ks: TestKeyspace;
let ops: Ops;
let browser: Browser;
let baseUrl: string;
let screenshot: string;
const children: Child[] = [];

/** Enqueues jobs on three shards, chained per shard, until stopped: a steady flow for the UI. */
class Load {
  private readonly nextSeq = new Map<string, bigint>();
  private running = true;
  private loop: Promise<void> | undefined;
  jobs = 0;

  constructor(private readonly queues: ReadonlyMap<string, Queue>) {}

  private messages(shard: string, count: number): SettlementMessage[] {
    const first = this.nextSeq.get(shard) ?? 1n;
    this.nextSeq.set(shard, first + BigInt(count));
    return Array.from({ length: count }, (_v, i) => {
      const seq = first + BigInt(i);
      const user = 1_000n + (seq % USERS);
      if (shard === 'funding') return funding(seq, user, 'DEPOSIT', 1_000_000n + seq, 2);
      const base = shard === 'btc_usdt' ? 1 : 3;
      return trade(seq, {
        shard,
        baseAsset: base,
        tradeId: seq,
        buyerUserId: user,
        sellerUserId: 1_000n + ((seq + 7n) % USERS),
        price: 100_000_000n,
        quantity: 1_000n,
        quoteAmount: 1_000n,
      });
    });
  }

  async burst(jobsPerShard: number): Promise<void> {
    for (let i = 0; i < jobsPerShard; i++) {
      for (const [shard, queue] of this.queues) {
        const prev = (this.nextSeq.get(shard) ?? 1n) - 1n;
        await enqueueJob(queue, shard, prev, this.messages(shard, JOB_MESSAGES));
        this.jobs += 1;
      }
    }
  }

  /** One job per shard every `intervalMs`, until stop(). */
  start(intervalMs: number): void {
    this.loop = (async () => {
      while (this.running) {
        await this.burst(1);
        await new Promise((r) => setTimeout(r, intervalMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  lastSeqs(): Map<string, bigint> {
    return new Map([...this.nextSeq].map(([shard, next]) => [shard, next - 1n]));
  }
}

let load: Load;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium`);
  const port = await freePort();
  const config = testConfig({ dashboard: { token: TOKEN, user: USER, port }, reconciliation: { enabled: false } });
  ks = await createTestKeyspace(config);
  const dir = path.join(ROOT, 'data', 'test', config.scylladb.keyspace);
  const configFile = writeConfigFile(config, path.join(dir, 'settlement.yaml'));
  screenshot = path.join(dir, 'dashboard.png');
  children.push(new Child('settler', configFile, path.join(dir, 'settler.log')));
  children.push(new Child('reconciler', configFile, path.join(dir, 'reconciler.log')));
  children.push(new Child('dashboard', configFile, path.join(dir, 'dashboard.log')));
  baseUrl = `http://127.0.0.1:${port}`;
  ops = openOps(config);
  const catalog = new MarketCatalog(config);
  expect(catalog.shards).toContain('eth_usdt');
  load = new Load(new Map(['btc_usdt', 'eth_usdt', 'funding'].map((shard) => [shard, ops.settlementQueues.find((q) => q.shard === shard)!.queue])));
  await waitFor('dashboard ready', async () => (await fetch(`${baseUrl}/readyz`)).ok, 30_000);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 90_000);

afterAll(async () => {
  await load?.stop();
  await browser?.close();
  await Promise.all(children.map((c) => c.stop()));
  await ops?.close();
  await ks?.drop();
});

describe('dashboard in Chromium', () => {
  it('answers 401 to a visitor without credentials', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Headless Chromium has nobody to type into the login prompt: the 401 challenge ends the
    // navigation with this error instead of a page.
    await expect(page.goto(`${baseUrl}/queues`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    // The same requests from a page of the origin (the open /healthz) see the 401 itself.
    const open = await context.newPage();
    await open.goto(`${baseUrl}/healthz`);
    const answers = await open.evaluate(async () =>
      Promise.all(
        ['/queues', '/queues/api/queues', '/v1/shards'].map(async (p) => {
          // credentials: 'omit' sends none and never opens the login prompt.
          const r = await fetch(p, { credentials: 'omit' });
          return { status: r.status, challenge: r.headers.get('www-authenticate') };
        }),
      ),
    );
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.challenge).toContain('Basic realm=');
    }
    await context.close();
  });

  it('shows the settlement queues with counts while jobs flow, read-only, and runs a reconcile job added from the UI', async () => {
    const context = await browser.newContext({ httpCredentials: { username: USER, password: TOKEN }, viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    // A backlog first (so counts are visibly non-zero), then a steady flow.
    await load.burst(40);
    load.start(100);

    const response = await page.goto(`${baseUrl}/queues`);
    expect(response?.status()).toBe(200);
    for (const shard of ['btc_usdt', 'eth_usdt', 'btc_eth', 'funding']) {
      await expect.poll(() => page.getByText(`settle-${shard}`, { exact: true }).count(), { timeout: 15_000 }).toBeGreaterThan(0);
    }
    // The cards show job counts (bull-board polls every 2 s): wait until btc_usdt's is non-zero.
    const card = page.locator('a, div').filter({ hasText: /^settle-btc_usdt/ }).filter({ hasText: /\d+ Jobs?/ }).last();
    await expect.poll(async () => Number(/(\d+) Jobs?/.exec(await card.innerText())?.[1] ?? 0), { timeout: 20_000 }).toBeGreaterThan(0);
    await page.screenshot({ path: screenshot });
    if (!existsSync(DOCS_SCREENSHOT) || process.env.UPDATE_SCREENSHOT === '1') {
      mkdirSync(path.dirname(DOCS_SCREENSHOT), { recursive: true });
      copyFileSync(screenshot, DOCS_SCREENSHOT);
    }

    // A settlement queue offers no actions: no queue menu, no retry/clean buttons.
    await page.goto(`${baseUrl}/queues/queue/settle-btc_usdt`);
    await expect.poll(() => page.getByText('settle-btc_usdt').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await page.waitForTimeout(1_000);
    expect(await page.locator('main button[aria-haspopup="menu"]').count()).toBe(0);
    expect(await page.getByRole('button', { name: /^(retry|clean)/i }).count()).toBe(0);

    // The reconcile queue: menu → Add job → data → Add.
    await page.goto(`${baseUrl}/queues/queue/reconcile`);
    const menu = page.locator('main button[aria-haspopup="menu"]');
    await expect.poll(() => menu.count(), { timeout: 10_000 }).toBeGreaterThan(0);
    await menu.last().click();
    await page.getByRole('menuitem', { name: 'Add job' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Job name').fill('reconcile');
    const dataEditor = dialog.locator('.cm-content').first();
    await dataEditor.click();
    await page.keyboard.press('ControlOrMeta+a');
    await page.keyboard.press('Delete');
    // insertText skips the editor's bracket auto-closing, so the JSON arrives as written.
    await page.keyboard.insertText('{"mode":"users","userIds":["1001","1002","1003"],"trigger":"browser-test"}');
    await dialog.getByRole('button', { name: 'Add', exact: true }).click();

    // The job shows up and completes (the real reconciler runs it).
    const reconcileJob = await waitFor(
      'the UI-added reconcile job to complete',
      async () => {
        // Read from the completed set only: a job read while active has no return value yet,
        // even if it completes before its state is asked.
        const [job] = (await ops.reconcileQueue.getJobs(['completed'])).filter((j) => j.data?.trigger === 'browser-test');
        return job;
      },
      45_000,
    );
    expect(reconcileJob.name).toBe('reconcile');
    expect(reconcileJob.data).toEqual({ mode: 'users', userIds: ['1001', '1002', '1003'], trigger: 'browser-test' });
    expect((reconcileJob.returnvalue as { usersChecked?: number }).usersChecked).toBe(3);
    await page.getByText('Completed', { exact: false }).first().click();
    await expect.poll(() => page.getByText(`#${reconcileJob.id}`).count(), { timeout: 15_000 }).toBeGreaterThan(0);
    await context.close();

    // Everything enqueued is settled: the flow was real.
    await load.stop();
    const targets = load.lastSeqs();
    await waitFor(
      'settlers to drain the load',
      async () => {
        const marks = new Map((await ops.watermarks.list()).map((m) => [m.shard, m.lastSeq]));
        return [...targets].every(([shard, seq]) => (marks.get(shard) ?? 0n) >= seq);
      },
      45_000,
    );
    expect(load.jobs).toBeGreaterThan(120);
  }, 150_000);
});
