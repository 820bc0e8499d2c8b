/**
 * npm run bench:batch-cost — what one LOGGED BATCH costs Cassandra, apart from its rows.
 *
 * Runs the raw path of `npm run bench` (the settler's own statements, precomputed, one batch in
 * flight per shard) with several batch sizes, each on a fresh keyspace after the same untimed
 * warm-up, and reads Cassandra's and this process's CPU from /proc. A straight line through
 * "Cassandra CPU per message" against "1 / messages per batch" splits the cost into a part per
 * message and a part per batch (batchlog write and delete, request handling, the watermark row).
 * That per-batch part is why small jobs (low rates, many shards) cost the machine more per
 * message than full ones.
 *
 * Flags: USAGE below (`--help`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '@settlement/config';
import { MarketCatalog } from '@settlement/domain';
import { SettlementWriter, createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { createSimulator, marketFromConfig } from '@settlement/simulator';
import { ROOT, parseScriptArgs } from '@settlement/tools';
import { CpuMeter, findCassandraPid, waitUntilQuiet } from './cpu.js';
import { round } from './latency.js';
import { closedLoopWindowMessages, planRawBatches, runRawCeiling } from './raw-ceiling.js';
import { sequencedMessages } from './stream.js';
import { formatTable } from './table.js';

const KEYSPACE = 'bench_batch_cost';

const USAGE = `
npm run bench:batch-cost [-- FLAGS]: what one LOGGED BATCH costs Cassandra apart from its rows

  --sizes 50,10,5     messages per batch, one measurement each
  --duration 12       seconds per size
  --users 10000       simulated users
  --warm-up 100000    messages written untimed before each size
  --seed 1            simulator seed
  -h, --help          this text
`;

const args = parseScriptArgs(USAGE, {
  sizes: { type: 'string', default: '50,10,5' },
  duration: { type: 'string', default: '12' },
  users: { type: 'string', default: '10000' },
  'warm-up': { type: 'string', default: '100000' },
  seed: { type: 'string', default: '1' },
});

const say = (message: string) => process.stderr.write(`[batch-cost] ${message}\n`);

function positiveInts(name: string, raw: string): number[] {
  const values = raw.split(',').map(Number);
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) {
    say(`--${name} must be positive integers separated by commas, got ${raw}`);
    process.exit(2);
  }
  return values;
}

interface SizeResult {
  readonly messagesPerBatch: number;
  readonly messagesPerS: number;
  readonly batchesPerS: number;
  readonly statementsPerBatch: number;
  readonly cassandraCores: number;
  readonly clientCores: number;
  readonly cassandraUsPerMessage: number;
  readonly clientUsPerMessage: number;
}

/** Least squares of y = a + b·x. */
function fitLine(points: readonly { x: number; y: number }[]): { a: number; b: number } {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const sxx = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  const b = sxx === 0 ? 0 : points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0) / sxx;
  return { a: my - b * mx, b };
}

const [durationS] = positiveInts('duration', args.duration!);
const [users] = positiveInts('users', args.users!);
const [seed] = positiveInts('seed', args.seed!);
const warmUp = Number(args['warm-up']);

async function measureSize(size: number, config: ReturnType<typeof loadConfig>, cassandraPid: number | undefined): Promise<SizeResult> {
  const admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  await admin.execute(`DROP KEYSPACE IF EXISTS ${KEYSPACE}`);
  await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace: KEYSPACE, replicationFactor: 1, symbols: config.symbols.map((s) => s.name) });
  await admin.shutdown();
  const client = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: KEYSPACE });
  await client.connect();
  try {
    const writer = new SettlementWriter({ client, keyspace: KEYSPACE, symbols: config.symbols.map((s) => s.name), consistency: config.scylladb.consistency, feeAccountUserId: config.fee_account_user_id });
    const count = warmUp + 14_000 * durationS!;
    const simulator = createSimulator({ market: marketFromConfig(config), messages: count, users: users!, seed: seed! });
    const plans = planRawBatches(writer, sequencedMessages(simulator, new MarketCatalog(config), count), size, { catalog: new MarketCatalog(config) }, warmUp);
    say(`${size} messages per batch: warm-up (${warmUp} messages, untimed)`);
    await Promise.all([...plans.values()].map(async (list) => {
      for (const batch of list) if (batch.warmUp) await writer.execute(batch.statements);
    }));
    for (const [shard, list] of plans) plans.set(shard, list.filter((b) => !b.warmUp));
    await waitUntilQuiet(cassandraPid, 0.15, 3, 90_000);
    say(`${size} messages per batch: writing for ${durationS} s`);
    const cpu = new CpuMeter(() => ({ cassandra: cassandraPid, client: process.pid }));
    cpu.start();
    const result = await runRawCeiling({ client, writer, plans, durationMs: durationS! * 1000, unsettledMax: closedLoopWindowMessages(size, plans.size) });
    const cores = cpu.stop();
    const cassandraCores = cores['cassandra'] ?? Number.NaN;
    const clientCores = cores['client'] ?? Number.NaN;
    return {
      messagesPerBatch: size,
      messagesPerS: Math.round(result.messagesPerS),
      batchesPerS: Math.round((result.batches * 1000) / result.elapsedMs),
      statementsPerBatch: round(result.statementsPerBatchAvg, 1),
      cassandraCores,
      clientCores,
      cassandraUsPerMessage: Math.round((cassandraCores * 1e6) / result.messagesPerS),
      clientUsPerMessage: Math.round((clientCores * 1e6) / result.messagesPerS),
    };
  } finally {
    await client.execute(`DROP KEYSPACE IF EXISTS ${KEYSPACE}`).catch(() => undefined);
    await client.shutdown();
  }
}

async function main(): Promise<void> {
  const sizes = positiveInts('sizes', args.sizes!);
  const config = loadConfig({ cwd: ROOT });
  const cassandraPid = findCassandraPid(config.data_dir);
  if (cassandraPid === undefined) say('Cassandra\'s pid was not found: CPU figures will be missing (is the local stack up? npm run stack:up)');
  const results: SizeResult[] = [];
  for (const size of sizes) results.push(await measureSize(size, config, cassandraPid));

  const cassandra = fitLine(results.map((r) => ({ x: 1 / r.messagesPerBatch, y: r.cassandraUsPerMessage })));
  const clientFit = fitLine(results.map((r) => ({ x: 1 / r.messagesPerBatch, y: r.clientUsPerMessage })));
  const model = {
    cassandraUsPerMessage: Math.round(cassandra.a),
    cassandraUsPerBatch: Math.round(cassandra.b),
    clientUsPerMessage: Math.round(clientFit.a),
    clientUsPerBatch: Math.round(clientFit.b),
  };
  process.stdout.write(
    '\n' +
      formatTable(
        ['msgs/batch', 'msgs/s', 'batches/s', 'stmts/batch', 'cassandra cores', 'client cores', 'cassandra µs/msg', 'client µs/msg'],
        results.map((r) => [r.messagesPerBatch, r.messagesPerS, r.batchesPerS, r.statementsPerBatch, r.cassandraCores, r.clientCores, r.cassandraUsPerMessage, r.clientUsPerMessage]),
      ) +
      `\n\nCPU per message ≈ per-message part + per-batch part / messages per batch:\n` +
      `  Cassandra: ${model.cassandraUsPerMessage} µs per message + ${model.cassandraUsPerBatch} µs per batch\n` +
      `  client (cassandra-driver): ${model.clientUsPerMessage} µs per message + ${model.clientUsPerBatch} µs per batch\n`,
  );
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `batch-cost-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ startedAt: new Date().toISOString(), results, model }, null, 2)}\n`);
  process.stdout.write(`results: ${path.relative(ROOT, file)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`[batch-cost] error: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
