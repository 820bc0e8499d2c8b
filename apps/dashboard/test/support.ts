/** Helpers of the dashboard's integration tests: child apps, an in-process dashboard, fixtures. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Queue } from 'bullmq';
import pino from 'pino';
import type { SettlementConfig } from '@settlement/config';
import { FUNDING_SHARD, SETTLE_JOB_NAME, encodeSettlementJob, settlementJobId, type FundingMessage, type SettlementMessage, type TradeMessage } from '@settlement/domain';
import { createProcessMetrics } from '@settlement/runtime';
import { appEnv, ROOT } from '@settlement/testing';
import { openOps, type Ops } from '../src/ops/context.js';
import { createDashboardApp } from '../src/server/app.js';
import { createDashboardMetrics } from '../src/server/metrics.js';

export const TOKEN = 'test-token-0123456789';
export const USER = 'ops';

export function basicAuth(user = USER, token = TOKEN): string {
  return `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`;
}

export { waitFor } from '@settlement/testing';

/** An app of this repository as a child process (from source through tsx), output in a log file. */
export class Child {
  readonly process: ChildProcess;
  private readonly exited: Promise<number | null>;

  constructor(app: string, configFile: string, logFile: string, args: readonly string[] = [], extraEnv: Record<string, string> = {}) {
    mkdirSync(path.dirname(logFile), { recursive: true });
    const log = createWriteStream(logFile, { flags: 'a' });
    this.process = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'apps', app, 'src', 'main.ts'), ...args], {
      cwd: ROOT,
      env: appEnv(configFile, extraEnv),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process.stdout?.pipe(log);
    this.process.stderr?.pipe(log);
    this.exited = new Promise((resolve) => this.process.once('exit', (code) => resolve(code)));
  }

  /** SIGTERM, then SIGKILL after graceMs. */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return this.process.exitCode;
    this.process.kill('SIGTERM');
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export interface InProcessDashboard {
  readonly url: string;
  readonly ops: Ops;
  close(): Promise<void>;
}

/** The dashboard's HTTP app on an ephemeral loopback port, in this process. */
export async function startDashboardInProcess(config: Readonly<SettlementConfig>): Promise<InProcessDashboard> {
  const ops = openOps(config);
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'warn' });
  const app = createDashboardApp({ ops, logger, metrics: createDashboardMetrics(createProcessMetrics('dashboard')) });
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    ops,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await ops.close();
    },
  };
}

export function trade(seq: bigint, fields: Partial<TradeMessage> & Pick<TradeMessage, 'tradeId' | 'buyerUserId' | 'sellerUserId' | 'price' | 'quantity' | 'quoteAmount'>): TradeMessage {
  return {
    kind: 'trade',
    shard: 'btc_usdt',
    seq,
    buyOrderId: seq * 10n,
    sellOrderId: seq * 10n + 1n,
    baseAsset: 1,
    quoteAsset: 2,
    buyerRefund: 0n,
    sellerRefund: 0n,
    buyerFee: 0n,
    sellerFee: 0n,
    matchSeq: seq,
    outputSequence: seq,
    settledAt: 1_700_000_000_000n + seq,
    buyerQuoteVersion: seq,
    buyerBaseVersion: seq,
    sellerBaseVersion: seq,
    sellerQuoteVersion: seq,
    ...fields,
  };
}

export function funding(seq: bigint, userId: bigint, eventType: FundingMessage['eventType'], amount: bigint, currency: number): FundingMessage {
  return { kind: 'funding', shard: FUNDING_SHARD, seq, userId, sequenceId: seq, eventType, amount, currency, relatedId: 0n, createdAt: 1_700_000_000_000n + seq };
}

/** Enqueues messages of one shard as one job after `prevLastSeq`, the way the ingestor does. */
export async function enqueueJob(queue: Queue, shard: string, prevLastSeq: bigint, messages: readonly SettlementMessage[]): Promise<string> {
  const jobId = settlementJobId(shard, messages[0]!.seq, messages[messages.length - 1]!.seq);
  await queue.add(SETTLE_JOB_NAME, encodeSettlementJob(shard, prevLastSeq, messages), { jobId });
  return jobId;
}

export function queueOf(ops: Ops, shard: string): Queue {
  const found = ops.settlementQueues.find((q) => q.shard === shard);
  if (found === undefined) throw new Error(`no queue for shard ${shard}`);
  return found.queue;
}

/** The `settle` CLI as users run it (apps/dashboard/bin/settle.mjs). */
export const SETTLE_BIN = path.join(ROOT, 'apps', 'dashboard', 'bin', 'settle.mjs');

export interface SettleRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `settle --config <configFile> <args>`. A command that does not exit is killed, and the
 * test fails on its output, not on vitest's timeout with nothing to show.
 */
export function runSettle(configFile: string, args: readonly string[], timeoutMs = 30_000): Promise<SettleRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SETTLE_BIN, '--config', configFile, ...args], { cwd: ROOT, env: { ...process.env, SETTLEMENT_CONFIG: '' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') reject(new Error(`settle ${args.join(' ')} did not exit within ${timeoutMs / 1000} s; stdout: ${stdout}; stderr: ${stderr}`));
      else resolve({ code, stdout, stderr });
    });
  });
}
