/**
 * Ingest throughput, ZMQ → Redis: a simulated stream pushed as fast as the socket takes it into
 * a real ingestor process (apps/ingestor/src/main.ts) writing to the local Redis. Measures from
 * the first frame sent to the moment the ingestor's state hash shows the last sequence of every
 * shard, then reads every job back and checks that each message is in exactly one job, in order
 * (a broken run cannot look fast). Exits 1 when the check fails, or when --min-rate is not met.
 *
 * Flags: USAGE below (`npm run bench:ingestor -- --help`).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { Push } from 'zeromq';
import { loadConfig, parseConfig } from '@settlement/config';
import { MarketCatalog } from '@settlement/domain';
// The simulator is the engine stand-in these tests drive in-process (an app used as a test fixture).
import { createSimulator, marketFromConfig } from '@settlement/simulator';
import { parseScriptArgs } from '@settlement/tools';
import { checkShardChain, deletePrefix, freePort, IngestorProcess, readShardJobs, redisClient, ROOT, stateKeyOf, writeConfig } from '../test/helpers.js';

const USAGE = `
npm run bench:ingestor [-- FLAGS]: ZMQ → Redis throughput of a real ingestor process, every job
read back and checked

  --messages 200000   messages pushed as fast as the socket takes them
  --users 10000       simulated users
  --min-rate 0        exit 1 below this many messages/s
  -h, --help          this text
`;

const flags = parseScriptArgs(USAGE, {
  messages: { type: 'string', default: '200000' },
  users: { type: 'string', default: '10000' },
  'min-rate': { type: 'string', default: '0' },
});
const messages = Number(flags.messages);
const users = Number(flags.users);
const minRate = Number(flags['min-rate']);
for (const [name, value] of [['--messages', messages], ['--users', users], ['--min-rate', minRate]] as const) {
  if (!Number.isInteger(value) || value < 0) {
    process.stderr.write(`ingest-throughput: ${name} must be a non-negative integer\n`);
    process.exit(2);
  }
}

/** Reads utime + stime of a process from /proc, seconds (Linux). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

async function main(): Promise<number> {
  const repoConfig = loadConfig({ cwd: ROOT, env: {} });
  const tag = randomBytes(4).toString('hex');
  const port = await freePort();
  const dataDir = path.join(ROOT, 'data', 'bench', `ingest-${tag}`);
  const config = parseConfig({
    ...JSON.parse(JSON.stringify(repoConfig, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))),
    redis: { ...repoConfig.redis, url: process.env.REDIS_URL ?? repoConfig.redis.url, prefix: `{bench${tag}}` },
    zmq: { ...repoConfig.zmq, settlement_port: port, pub_endpoint: undefined, replay_endpoint: undefined },
    data_dir: dataDir,
    log_level: 'info',
  });
  const configFile = writeConfig(config, path.join(dataDir, 'ingestor.yaml'));

  const catalog = new MarketCatalog(config);
  process.stdout.write(`generating ${messages} messages for ${users} users…\n`);
  const sim = createSimulator({ market: marketFromConfig(config), messages, users, seed: 1 });
  const frames = sim.schedule.entries.map((_e, i) => sim.frameAt(i, Date.now()));
  const expected = sim.expected();

  const redis = redisClient(config.redis.url);
  const ingestor = new IngestorProcess(configFile);
  let code = 0;
  try {
    await ingestor.ready();
    const pid = ingestor.pid!;
    const cpuBefore = cpuSeconds(pid);
    const push = new Push({ sendHighWaterMark: 100_000, linger: 30_000 });
    push.connect(`tcp://127.0.0.1:${port}`);
    await sleep(200);

    const startedMs = performance.now();
    let sentAtMs = 0;
    const sending = (async () => {
      for (let i = 0; i < frames.length; i++) {
        await push.send(frames[i]!);
        if ((i & 1023) === 1023) await yieldToEventLoop();
      }
      sentAtMs = performance.now() - startedMs;
    })();
    const want = { ...expected.lastSequences.bySymbol, funding: expected.lastSequences.funding };
    let doneAtMs = 0;
    for (;;) {
      const state = await redis.hgetall(stateKeyOf(config));
      if (Object.entries(want).every(([field, seq]) => state[field] === seq)) {
        doneAtMs = performance.now() - startedMs;
        break;
      }
      if (performance.now() - startedMs > 600_000) throw new Error('ingestor did not catch up within 10 minutes');
      await sleep(10);
    }
    await sending;
    const cpu = cpuSeconds(pid) - cpuBefore;
    push.close();

    const rate = (messages * 1000) / doneAtMs;
    process.stdout.write(
      `\nZMQ → Redis: ${messages} messages in ${doneAtMs.toFixed(0)} ms = ${rate.toFixed(0)} messages/s ` +
        `(sender done after ${sentAtMs.toFixed(0)} ms; ingestor CPU ${cpu.toFixed(2)} s = ${((cpu * 1e6) / messages).toFixed(1)} µs/message)\n`,
    );
    process.stdout.write(`target ≥ 30000 messages/s: ${rate >= 30_000 ? 'met' : 'NOT met'}\n`);

    // The check: each message exactly once, in order, chained.
    let enqueued = 0;
    let jobs = 0;
    for (const shard of catalog.shards) {
      const shardJobs = await readShardJobs(config, shard, redis);
      jobs += shardJobs.jobs.length;
      const ordered = checkShardChain(shardJobs);
      const sent = sim.messages.filter((m) => m.shard === shard).map((m) => m.seq);
      if (ordered.length !== sent.length || ordered.some((m, i) => m.seq !== sent[i])) throw new Error(`shard ${shard}: jobs hold ${ordered.length} messages, ${sent.length} were sent`);
      enqueued += ordered.length;
    }
    process.stdout.write(`check: ${enqueued} messages in ${jobs} jobs, each exactly once and in order per shard: OK\n`);
    if (rate < minRate) {
      process.stdout.write(`FAIL: below --min-rate ${minRate}\n`);
      code = 1;
    }
    const exit = await ingestor.stop();
    if (exit.code !== 0) throw new Error(`ingestor exited with ${exit.code ?? exit.signal}`);
  } catch (error) {
    process.stderr.write(`ingest-throughput FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    ingestor.kill('SIGKILL');
    code = 1;
  } finally {
    await deletePrefix(redis, config.redis.prefix);
    redis.disconnect();
    await sim.close();
  }
  return code;
}

main().then((code) => process.exit(code));
