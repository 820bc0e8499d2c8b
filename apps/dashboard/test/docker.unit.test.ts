/**
 * The Docker files, checked without a Docker engine: the compose file's properties (start
 * order on healthy stores, a scalable settler, loopback-only ports), that each Dockerfile
 * builds a project that exists and runs as non-root, the compose config file validated by the
 * real config schema, and `docker compose config` (or docker-compose v1) when a compose client
 * is installed. The healthcheck the images run is exercised for real in healthcheck.int.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ConfigError, loadConfig } from '@settlement/config';
import { ROOT } from '@settlement/testing';

const APPS = ['ingestor', 'settler', 'reconciler', 'dashboard', 'simulator'] as const;

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  ports?: string[];
  profiles?: string[];
  container_name?: string;
  environment?: Record<string, string>;
  volumes?: string[];
}

/** Compose's `${VAR:-default}` interpolation, with every variable unset (the defaults apply). */
function interpolateDefaults(text: string): string {
  return text.replace(/\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}/g, (_m, _name: string, fallback: string) => fallback);
}

const compose = parseYaml(interpolateDefaults(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8')), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;

/** The first compose client that answers: the v2 plugin, else docker-compose v1. */
function composeClient(): string[] | undefined {
  for (const command of [['docker', 'compose'], ['docker-compose']]) {
    const probe = spawnSync(command[0]!, [...command.slice(1), 'version'], { encoding: 'utf8' });
    if (probe.status === 0) return command;
  }
  return undefined;
}

describe('docker-compose.yml', () => {
  it('has the stores, the schema job, every app, and the simulator behind a profile', () => {
    expect(Object.keys(services).sort()).toEqual(['dashboard', 'ingestor', 'reconciler', 'redis', 'schema', 'scylla', 'settler', 'simulator']);
    expect(services.scylla!.image).toMatch(/^scylladb\/scylla:/);
    expect(services.redis!.image).toMatch(/^redis:/);
    // BullMQ requires noeviction; AOF keeps the queues across a Redis restart.
    expect(services.redis!.command).toContain('--maxmemory-policy noeviction');
    expect(services.redis!.command).toContain('--appendonly yes');
    expect(services.simulator!.profiles).toEqual(['sim']);
  });

  it('starts apps only after healthy stores and a completed schema job; every long-running service has a healthcheck', () => {
    expect(services.schema!.command).toEqual(['node', 'main.js', 'schema']);
    expect(services.schema!.depends_on).toEqual({ scylla: { condition: 'service_healthy' } });
    for (const app of ['ingestor', 'settler', 'reconciler', 'dashboard']) {
      expect(services[app]!.depends_on, app).toEqual({
        redis: { condition: 'service_healthy' },
        scylla: { condition: 'service_healthy' },
        schema: { condition: 'service_completed_successfully' },
      });
    }
    for (const name of ['scylla', 'redis', 'ingestor', 'settler', 'reconciler', 'dashboard']) expect(services[name]!.healthcheck?.test, name).toBeDefined();
    expect(services.settler!.healthcheck!.test).toEqual(['CMD', 'node', 'healthcheck.mjs', 'heartbeat', 'settler']);
    expect(services.dashboard!.healthcheck!.test).toContain('http://127.0.0.1:3000/readyz');
  });

  it('lets the settler scale (no container name, no host port) and publishes ports on loopback only', () => {
    expect(services.settler!.container_name).toBeUndefined();
    expect(services.settler!.ports).toBeUndefined();
    const published = Object.values(services).flatMap((s) => s.ports ?? []);
    expect(published.sort()).toEqual(['127.0.0.1:3000:3000', '127.0.0.1:5557:5557']);
  });

  it('builds each app from its own Dockerfile', () => {
    for (const app of APPS) expect(services[app]!.build!.dockerfile).toBe(`docker/${app}.Dockerfile`);
    expect(services.schema!.build!.dockerfile).toBe('docker/dashboard.Dockerfile');
  });

  it('passes `docker compose config` (when a compose client is installed)', (ctx) => {
    const client = composeClient();
    if (client === undefined) ctx.skip();
    for (const profile of [[], ['--profile', 'sim']]) {
      const result = spawnSync(client![0]!, [...client!.slice(1), ...profile, 'config', '--quiet'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, DASHBOARD_TOKEN: 'x'.repeat(20) } });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
    }
  });
});

describe('docker/*.Dockerfile', () => {
  // What the images run must exist: each Dockerfile builds an Nx project whose entry point is
  // there (the rest of a Dockerfile is checked by building it, where a Docker engine runs).
  for (const app of APPS) {
    it(`${app}: builds a project of this repository and runs as a non-root user`, () => {
      const text = readFileSync(path.join(ROOT, 'docker', `${app}.Dockerfile`), 'utf8');
      const project = /RUN npx nx run ([a-z-]+):build/.exec(text)?.[1];
      expect(project).toBe(app);
      expect(existsSync(path.join(ROOT, 'apps', project!, 'src', 'main.ts'))).toBe(true);
      expect(text).toMatch(/^USER node$/m);
    });
  }
});

describe('docker/config/settlement.yaml', () => {
  const env = (extra: Record<string, string> = {}) => ({ ...(services.settler!.environment ?? {}), ...extra });

  it('is a valid config for the containers, pointing at the compose services', () => {
    const config = loadConfig({ file: 'docker/config/settlement.yaml', env: env(), cwd: ROOT });
    expect(config.scylladb.hosts).toEqual(['scylla:9042']);
    expect(config.redis.url).toBe('redis://redis:6379');
    expect(config.zmq.bind_host).toBe('0.0.0.0');
    expect(config.data_dir).toBe('/app/data');
    expect(config.dashboard.host).toBe('127.0.0.1');
  });

  it('makes the dashboard container refuse to start without DASHBOARD_TOKEN', () => {
    const dashboardEnv = { ...(services.dashboard!.environment ?? {}) };
    expect(dashboardEnv['DASHBOARD_HOST']).toBe('0.0.0.0');
    expect(() => loadConfig({ file: 'docker/config/settlement.yaml', env: { ...dashboardEnv, DASHBOARD_TOKEN: '' }, cwd: ROOT })).toThrow(ConfigError);
    expect(() => loadConfig({ file: 'docker/config/settlement.yaml', env: { ...dashboardEnv, DASHBOARD_TOKEN: '' }, cwd: ROOT })).toThrow(
      'dashboard.token: is required when dashboard.host (0.0.0.0) is not a loopback address',
    );
    const config = loadConfig({ file: 'docker/config/settlement.yaml', env: { ...dashboardEnv, DASHBOARD_TOKEN: 'a-long-enough-token' }, cwd: ROOT });
    expect(config.dashboard.host).toBe('0.0.0.0');
  });
});
