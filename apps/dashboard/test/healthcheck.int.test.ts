/**
 * docker/healthcheck.mjs, the check every image runs, run here as the containers run it (node,
 * no TypeScript, copied alone into the image): against a real HTTP server, a real TCP port and
 * real heartbeats in the machine's Redis, written with the heartbeat codec the apps use — so a
 * drift between the key the apps write and the pattern the check restates shows here.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatKey } from '@settlement/domain';
import { createRedisConnection, encodeHeartbeat } from '@settlement/runtime';
import { ROOT, freePort, testConfig, uniqueName } from '@settlement/testing';

const SCRIPT = path.join(ROOT, 'docker', 'healthcheck.mjs');
const redisUrl = testConfig().redis.url;

/** Runs the check as a container would; async, so the HTTP server in this process can answer it. */
function check(args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { cwd: path.join(ROOT, 'docker'), env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe('docker/healthcheck.mjs', () => {
  let server: http.Server;
  let httpPort: number;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      res.statusCode = req.url === '/readyz' ? 200 : 503;
      res.end();
    });
    httpPort = await freePort();
    await new Promise<void>((resolve) => server.listen(httpPort, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('http: healthy on a 2xx answer, unhealthy otherwise, saying why', async () => {
    expect((await check(['http', `http://127.0.0.1:${httpPort}/readyz`])).status).toBe(0);
    const down = await check(['http', `http://127.0.0.1:${httpPort}/other`]);
    expect(down.status).toBe(1);
    expect(down.stderr).toContain('answered 503');
  });

  it('tcp: healthy while something accepts connections on the port', async () => {
    expect((await check(['tcp', String(httpPort)])).status).toBe(0);
    const closed = await freePort();
    const result = await check(['tcp', String(closed)]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`port ${closed}`);
  });

  it('refuses a call it does not know, with its usage', async () => {
    const result = await check(['nonsense']);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('usage: healthcheck.mjs');
  });

  it('heartbeat: healthy while its app process (main.js) has a heartbeat in Redis under the apps\' own key', async (ctx) => {
    // The check finds "its" process as the one running main.js: only meaningful when ours is the only one.
    const others = readdirSync('/proc').filter((e) => /^\d+$/.test(e) && e !== String(process.pid)).filter((e) => {
      try {
        return readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').some((arg) => arg.endsWith('main.js'));
      } catch {
        return false;
      }
    });
    if (others.length > 0) ctx.skip();
    const dir = mkdtempSync(path.join(tmpdir(), 'healthcheck-'));
    writeFileSync(path.join(dir, 'main.js'), 'setInterval(() => {}, 1000);\n');
    const app = spawn(process.execPath, [path.join(dir, 'main.js')], { stdio: 'ignore' });
    const redis = createRedisConnection(redisUrl);
    const prefix = `{${uniqueName('hc_')}}`;
    const key = heartbeatKey(prefix, 'settler', 'test-instance');
    try {
      const env = { REDIS_URL: redisUrl, REDIS_PREFIX: prefix };
      const none = await check(['heartbeat', 'settler'], env);
      expect(none.status).toBe(1);
      expect(none.stderr).toContain(`no live heartbeat of settler pid ${app.pid}`);
      const now = new Date().toISOString();
      await redis.set(key, encodeHeartbeat({ app: 'settler', instanceId: 'test-instance', pid: app.pid!, hostname: hostname(), startedAt: now, updatedAt: now, metrics: [], status: {} }), 'EX', 30);
      expect((await check(['heartbeat', 'settler'], env)).status).toBe(0);
      // Another app's heartbeat does not count.
      expect((await check(['heartbeat', 'reconciler'], env)).status).toBe(1);
    } finally {
      app.kill();
      await redis.del(key);
      await redis.quit();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
