/**
 * Helpers for the ingestor's integration tests and its benchmark: free ports, the ingestor as a
 * child process with its JSON log lines, and reading every settlement job back from the BullMQ
 * queues. No vitest import here (the benchmark runs outside vitest).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { SettlementConfig } from '@settlement/config';
import { decodeSettlementJob, ingestPositionKey, parseWireMessage, settlementQueueName, type MarketCatalog, type SettlementJob, type SettlementMessage } from '@settlement/domain';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { stringify as stringifyYaml } from 'yaml';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import type { Simulator } from '@settlement/simulator';

// From @settlement/tools, not @settlement/testing: that one needs vitest, and the benchmark
// (perf/ingest-throughput.ts) imports this file outside vitest.
import { waitFor } from '@settlement/tools';
export { freePort, waitFor } from '@settlement/tools';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Writes a config as YAML for the ingestor child process (bigints as decimal strings). */
export function writeConfig(config: Readonly<SettlementConfig>, file: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, stringifyYaml(JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))));
  return file;
}

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** Children still running when the test process exits (a failed assertion skipped stop()). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The ingestor (apps/ingestor/src/main.ts) as a child process. */
export class IngestorProcess {
  readonly logs: LogLine[] = [];
  readonly stderr: string[] = [];
  private readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(configFile: string, extraEnv: Record<string, string> = {}) {
    this.child = spawn(process.execPath, [...(process.env.INGESTOR_NODE_FLAGS ?? '').split(' ').filter(Boolean), '--import', 'tsx', path.join('apps', 'ingestor', 'src', 'main.ts')], {
      cwd: ROOT,
      env: { ...process.env, SETTLEMENT_CONFIG: configFile, LOG_LEVEL: 'info', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          this.stderr.push(line);
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => this.stderr.push(chunk.toString('utf8')));
    running.add(this.child);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        running.delete(this.child);
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async ready(timeoutMs = 30_000): Promise<void> {
    await Promise.race([
      waitFor('ingestor ready', () => this.logs.some((l) => l.msg === 'ingestor ready'), timeoutMs, 50),
      this.exited.then((e) => {
        throw new Error(`ingestor exited before ready (${e.code ?? e.signal}): ${this.stderr.join('')} ${JSON.stringify(this.logs.slice(-5))}`);
      }),
    ]);
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGTERM and wait for the exit. */
  async stop(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      this.exited,
      new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Error('ingestor did not exit after SIGTERM')), timeoutMs))),
    ]);
    clearTimeout(timer);
    return result;
  }

  logged(msg: string): LogLine[] {
    return this.logs.filter((l) => l.msg === msg);
  }
}

export function startIngestorProcess(config: Readonly<SettlementConfig>, name: string): IngestorProcess {
  const file = writeConfig(config, path.join(config.data_dir, `${name}.yaml`));
  return new IngestorProcess(file);
}

export function stateKeyOf(config: Readonly<SettlementConfig>): string {
  return ingestPositionKey(config.redis.prefix);
}

/** True once the ingestor's state hash shows the last sequence of every shard. */
export async function reachedExpected(redis: Redis, config: Readonly<SettlementConfig>, expected: Simulator['expected'] extends () => infer R ? R : never): Promise<boolean> {
  const state = await redis.hgetall(stateKeyOf(config));
  for (const [symbol, seq] of Object.entries(expected.lastSequences.bySymbol)) if (state[symbol] !== seq) return false;
  if (expected.lastSequences.funding !== '0' && state['funding'] !== expected.lastSequences.funding) return false;
  return true;
}

export interface ShardJobs {
  readonly shard: string;
  /** Jobs sorted by first sequence. */
  readonly jobs: { readonly id: string; readonly timestamp: number; readonly job: SettlementJob }[];
}

/** Every settlement job of a shard, in every state, decoded and checked by the job schema. */
export async function readShardJobs(config: Readonly<SettlementConfig>, shard: string, connection: Redis): Promise<ShardJobs> {
  const queue = new Queue(settlementQueueName(shard), { connection, prefix: config.redis.prefix });
  try {
    const jobs = await queue.getJobs(['wait', 'active', 'delayed', 'completed', 'failed', 'paused', 'prioritized'], 0, -1, true);
    const decoded = jobs.map((j) => ({ id: j.id!, timestamp: j.timestamp, job: decodeSettlementJob(j.data) }));
    decoded.sort((a, b) => (a.job.messages[0]!.seq < b.job.messages[0]!.seq ? -1 : 1));
    return { shard, jobs: decoded };
  } finally {
    await queue.close();
  }
}

/**
 * Checks one shard's jobs: the chain (each job's prevLastSeq is the previous job's last seq),
 * job ids, strictly increasing sequences, and that jobs were added in sequence order. The first
 * job continues from `startAfterSeq` (0, or the settled watermark the queue was rebuilt from).
 * Returns the messages in order.
 */
export function checkShardChain(shardJobs: ShardJobs, startAfterSeq = 0n): SettlementMessage[] {
  const messages: SettlementMessage[] = [];
  let prevLast = startAfterSeq;
  let prevTimestamp = 0;
  for (const { id, timestamp, job } of shardJobs.jobs) {
    const first = job.messages[0]!.seq;
    const last = job.messages[job.messages.length - 1]!.seq;
    if (id !== `${shardJobs.shard}-${first}-${last}`) throw new Error(`job id ${id} does not match its messages ${first}-${last}`);
    if (job.prevLastSeq !== prevLast) throw new Error(`job ${id}: prevLastSeq ${job.prevLastSeq}, previous job ended at ${prevLast}`);
    if (timestamp < prevTimestamp) throw new Error(`job ${id} was added before the job preceding it`);
    for (const m of job.messages) {
      if (messages.length > 0 && m.seq <= messages[messages.length - 1]!.seq) throw new Error(`job ${id}: seq ${m.seq} not above the previous one`);
      messages.push(m);
    }
    prevLast = last;
    prevTimestamp = timestamp;
  }
  return messages;
}

/**
 * Compares what the jobs hold with what the simulator sent: every valid message exactly once,
 * in its shard, with the same content. Returns the number of messages checked.
 */
export function checkAgainstSimulator(sim: Simulator, byShard: ReadonlyMap<string, SettlementMessage[]>, catalog: MarketCatalog): number {
  let checked = 0;
  const expectedByShard = new Map<string, bigint[]>();
  for (const m of sim.messages) {
    const list = expectedByShard.get(m.shard) ?? [];
    list.push(m.seq);
    expectedByShard.set(m.shard, list);
  }
  for (const [shard, seqs] of expectedByShard) {
    const got = byShard.get(shard) ?? [];
    const gotSeqs = got.map((m) => m.seq);
    if (gotSeqs.length !== seqs.length || gotSeqs.some((s, i) => s !== seqs[i])) {
      const missing = seqs.filter((s) => !gotSeqs.includes(s)).slice(0, 10);
      throw new Error(`shard ${shard}: ${gotSeqs.length} messages in jobs, ${seqs.length} sent; first missing: ${missing.join(',')}`);
    }
  }
  for (const m of sim.messages) {
    const parsed = parseWireMessage(sim.journal.bytesFor(m, 0), catalog);
    if (!parsed.ok) throw new Error(parsed.reason);
    const got = byShard.get(m.shard)!.find((g) => g.seq === m.seq)!;
    const want = parsed.message;
    const same =
      want.kind === 'trade' && got.kind === 'trade'
        ? got.tradeId === want.tradeId && got.quantity === want.quantity && got.price === want.price && got.buyerUserId === want.buyerUserId && got.sellerRefund === want.sellerRefund && got.buyerFee === want.buyerFee
        : want.kind === 'funding' && got.kind === 'funding' && got.userId === want.userId && got.amount === want.amount && got.eventType === want.eventType && got.currency === want.currency;
    if (!same) throw new Error(`shard ${m.shard} seq ${m.seq}: job content differs from what was sent`);
    checked += 1;
  }
  return checked;
}

/** Deletes every key of a test prefix from a Redis. */
export async function deletePrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

export function redisClient(url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 3, lazyConnect: false });
  // The Redis outage test stops this server on purpose; failed commands still reject.
  redis.on('error', () => undefined);
  return redis;
}
