// Container healthcheck, shared by every image (copied to /app/healthcheck.mjs).
//   node healthcheck.mjs http <url>      the URL answers 2xx (dashboard /readyz)
//   node healthcheck.mjs tcp <port>      something accepts TCP connections on the port (ingestor ZMQ)
//   node healthcheck.mjs heartbeat <app> this container's <app> process published a Redis heartbeat
//                                        recently (settler, reconciler: they serve no port)
// Exit 0 = healthy, 1 = unhealthy; one line on stderr says why. Bounded by TIMEOUT_MS.
import { readFileSync, readdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';

const TIMEOUT_MS = 4_000;
const [mode, target] = process.argv.slice(2);

function fail(reason) {
  process.stderr.write(`unhealthy: ${reason}\n`);
  process.exit(1);
}

setTimeout(() => fail(`no answer within ${TIMEOUT_MS} ms`), TIMEOUT_MS).unref();

async function checkHttp(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!response.ok) fail(`${url} answered ${response.status}`);
}

function checkTcp(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: Number(port) }, () => {
      socket.destroy();
      resolve();
    });
    socket.on('error', (error) => fail(`port ${port}: ${error.message}`));
  });
}

/** Pid of this container's app process (the node process running main.js). */
function appPid() {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline.some((arg) => arg.endsWith('main.js'))) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

async function checkHeartbeat(app) {
  const { Redis } = await import('ioredis');
  const prefix = process.env.REDIS_PREFIX ?? '{settlement}';
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    const pid = appPid();
    if (pid === undefined) fail(`no ${app} process (main.js) in this container`);
    let cursor = '0';
    do {
      // heartbeatPattern(prefix, app) of libs/domain redis-keys.ts, restated: this file is copied alone into the images.
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:heartbeat:${app}:*`, 'COUNT', 200);
      cursor = next;
      const values = keys.length > 0 ? await redis.mget(...keys) : [];
      for (const value of values) {
        if (value === null) continue;
        const beat = JSON.parse(value);
        const hostname = beat.hostname ?? beat.status?.hostname;
        // Without a hostname in the heartbeat, the pid alone identifies the process (replicas
        // in other containers may share it, which only makes this check more lenient).
        if (beat.pid === pid && (hostname === undefined || hostname === os.hostname())) return;
      }
    } while (cursor !== '0');
    fail(`no live heartbeat of ${app} pid ${pid} in Redis`);
  } finally {
    redis.disconnect();
  }
}

try {
  if (mode === 'http' && target) await checkHttp(target);
  else if (mode === 'tcp' && target) await checkTcp(target);
  else if (mode === 'heartbeat' && target) await checkHeartbeat(target);
  else fail('usage: healthcheck.mjs http <url> | tcp <port> | heartbeat <app>');
  process.exit(0);
} catch (error) {
  fail(error instanceof Error ? error.message : String(error));
}
