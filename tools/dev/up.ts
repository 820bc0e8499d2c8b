/**
 * One command for the whole system on the local stack: Redis + Cassandra + schema, then the
 * ingestor, settlers, reconciler and dashboard as child processes, and the simulator feeding
 * trades. Prints the dashboard URL and credentials; Ctrl-C stops everything cleanly.
 *
 * Flags: USAGE below (`npm start -- --help`).
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { stringify as stringifyYaml } from 'yaml';
import { loadConfig, parseConfig, type SettlementConfig } from '@settlement/config';
import { createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { parseScriptArgs } from '../cli/script-args.js';
import { ChildApp, ROOT } from '../proc/child-app.js';

const USAGE = `
npm start [-- FLAGS]: the whole system on the local stack (Redis, Cassandra, ingestor, settlers,
reconciler, dashboard) fed by the simulator, in keyspace demo; Ctrl-C stops it

  --settlers 2        settler processes
  --rate 500          simulated messages/s
  --messages 1000000  messages the simulator sends, then it stops
  --users 1000        simulated users
  --no-simulator      start the services only (feed them from your own engine)
  -h, --help          this text
`;

const values = parseScriptArgs(USAGE, {
  settlers: { type: 'string', default: '2' },
  rate: { type: 'string', default: '500' },
  messages: { type: 'string', default: '1000000' },
  users: { type: 'string', default: '1000' },
  'no-simulator': { type: 'boolean', default: false },
});

const say = (message: string) => process.stderr.write(`[up] ${message}\n`);

function positive(name: string, raw: string | undefined): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    say(`--${name} must be a positive integer, got ${raw}`);
    process.exit(2);
  }
  return n;
}

const settlerCount = positive('settlers', values.settlers);
const rate = positive('rate', values.rate);
const messages = positive('messages', values.messages);
const users = positive('users', values.users);

const stack = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/stack/main.ts'), 'up'], { cwd: ROOT, stdio: 'inherit' });
if (stack.status !== 0) process.exit(stack.status ?? 1);

const baseConfig = loadConfig({ cwd: ROOT });
// The demo gets its own keyspace and queue prefix, emptied at every start: the simulator numbers
// its stream from 1 each time, and on top of a previous run the ingestor would rightly drop
// every message as already enqueued.
const demoConfigFile = path.join(baseConfig.data_dir, 'demo', 'settlement.yaml');
const plain = JSON.parse(JSON.stringify(baseConfig, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
const config = parseConfig({
  ...plain,
  scylladb: { ...plain['scylladb'], keyspace: 'demo' },
  redis: { ...plain['redis'], prefix: '{demo}' },
  data_dir: path.join(baseConfig.data_dir, 'demo'),
});
mkdirSync(path.dirname(demoConfigFile), { recursive: true });
writeFileSync(demoConfigFile, stringifyYaml(JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))));
await resetDemo(config);
const token = process.env.DASHBOARD_TOKEN ?? config.dashboard.token ?? randomBytes(12).toString('base64url');
const env = { ...process.env, SETTLEMENT_CONFIG: demoConfigFile, DASHBOARD_TOKEN: token, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' };
const logDir = path.join(config.data_dir, 'logs');

const apps: ChildApp[] = [
  new ChildApp({ app: 'ingestor', name: 'ingestor', env, logDir }),
  ...Array.from({ length: settlerCount }, (_, i) => new ChildApp({ app: 'settler', name: `settler-${i + 1}`, env, logDir })),
  new ChildApp({ app: 'reconciler', name: 'reconciler', env, logDir }),
  new ChildApp({ app: 'dashboard', name: 'dashboard', env, logDir }),
];
for (const app of apps) app.start();

let simulator: ChildApp | undefined;
if (!values['no-simulator']) {
  simulator = new ChildApp({
    app: 'simulator',
    name: 'simulator',
    env,
    logDir,
    args: [
      '--messages', String(messages), '--users', String(users), '--rate', String(rate), '--mode', 'push',
      '--endpoint', `tcp://127.0.0.1:${config.zmq.settlement_port}`,
      '--expected-out', path.join(config.data_dir, 'expected-balances.json'),
    ],
  });
  // Give the ingestor a moment to bind; PUSH would queue anyway, this only keeps the logs tidy.
  setTimeout(() => simulator?.start(), 1500);
}

say(`logs in ${logDir}`);
say(`dashboard: http://${config.dashboard.host}:${config.dashboard.port}/  user ${config.dashboard.user}  token ${token}`);
say(`CLI: npx settle -c ${path.relative(ROOT, demoConfigFile)} shards   (also: balances <user>, reconcile --sample 100 --wait)`);
say('Ctrl-C stops everything');

let stopping = false;
async function stopAll(): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('stopping …');
  await simulator?.stop('SIGTERM');
  // The ingestor first, so it flushes into queues the settlers still drain.
  await apps[0]!.stop('SIGTERM');
  await Promise.all(apps.slice(1).map((a) => a.stop('SIGTERM')));
  for (const app of [...apps, ...(simulator ? [simulator] : [])]) app.close();
  say('stopped (Cassandra keeps running: npm run stack:down stops it)');
  process.exit(0);
}
process.on('SIGINT', () => void stopAll());
process.on('SIGTERM', () => void stopAll());
for (const app of apps) {
  void app.waitExit().then((code) => {
    if (!stopping) say(`${app.options.name} exited with ${code}; see ${path.join(logDir, `${app.options.name}.log`)}`);
  });
}

/** Empties the demo keyspace and queue prefix, then applies the schema. */
async function resetDemo(demo: Readonly<SettlementConfig>): Promise<void> {
  const redis = new Redis(demo.redis.url, { maxRetriesPerRequest: 3 });
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${demo.redis.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
  const admin = createScyllaClient({ ...scyllaOptionsFromConfig(demo), keyspace: undefined });
  try {
    await admin.execute(`DROP KEYSPACE IF EXISTS ${demo.scylladb.keyspace}`);
    await migrate(admin, { schemaDir: path.join(ROOT, 'schema'), keyspace: demo.scylladb.keyspace, replicationFactor: demo.scylladb.replication_factor, symbols: demo.symbols.map((s) => s.name) });
  } finally {
    await admin.shutdown();
  }
  say(`demo keyspace ${demo.scylladb.keyspace} and queue prefix ${demo.redis.prefix} reset`);
}
