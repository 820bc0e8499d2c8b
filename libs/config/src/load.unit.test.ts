import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { loadConfig } from './load.js';

const ROOT = path.resolve(import.meta.dirname, '../../..');

function writeConfig(yaml: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'settlement-config-'));
  const file = path.join(dir, 'settlement.yaml');
  writeFileSync(file, yaml);
  return file;
}

describe('loadConfig', () => {
  it('loads the repository config with its documented defaults', () => {
    const config = loadConfig({ cwd: ROOT, env: {} });
    expect(config.scylladb.keyspace).toBe('trading');
    expect(config.zmq.settlement_port).toBe(5557);
    expect(config.reconciliation).toMatchObject({ enabled: true, interval_seconds: 3600, sample_size: 1000 });
    expect(config.batch.max_messages).toBe(50);
    expect(config.fee_account_user_id).toBe(0n);
    expect(Object.isFrozen(config.scylladb)).toBe(true);
  });

  it('applies env overrides', () => {
    const config = loadConfig({ cwd: ROOT, env: { SCYLLA_HOSTS: 'a:9042,b:9042', REDIS_URL: 'redis://r:6380', ZMQ_SETTLEMENT_PORT: '6000' } });
    expect(config.scylladb.hosts).toEqual(['a:9042', 'b:9042']);
    expect(config.redis.url).toBe('redis://r:6380');
    expect(config.zmq.settlement_port).toBe(6000);
  });

  it('names the key of a wrong value', () => {
    expect(() => loadConfig({ cwd: ROOT, env: { ZMQ_SETTLEMENT_PORT: 'abc' } })).toThrow(
      'Invalid config: zmq.settlement_port: Invalid input: expected number, received string',
    );
  });

  it('refuses a keyspace that is not a plain identifier', () => {
    expect(() => loadConfig({ cwd: ROOT, env: { SCYLLA_KEYSPACE: 'trading; DROP TABLE x' } })).toThrow(
      /^Invalid config: scylladb\.keyspace: must be a plain identifier/,
    );
  });

  it('refuses a symbol whose asset is not configured, naming the key', () => {
    const file = writeConfig(`
scylladb: { hosts: ["127.0.0.1"] }
redis: { url: "redis://127.0.0.1:6379" }
zmq: {}
assets: [{ id: 1, code: BTC, decimals: 8 }]
symbols: [{ name: btc_usdt, base: 1, quote: 2 }]
`);
    const error = (() => {
      try {
        loadConfig({ file, env: {} });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toBe('Invalid config: symbols.0.quote: asset 2 is not in assets');
  });

  it('does not turn a boolean typo into false', () => {
    expect(() => loadConfig({ cwd: ROOT, env: { RECONCILIATION_ENABLED: 'flase' } })).toThrow(/reconciliation\.enabled/);
  });

  it('requires a dashboard token off loopback', () => {
    expect(() => loadConfig({ cwd: ROOT, env: { DASHBOARD_HOST: '0.0.0.0' } })).toThrow(
      'Invalid config: dashboard.token: is required when dashboard.host (0.0.0.0) is not a loopback address',
    );
  });

  it('reports an unreadable file with its path', () => {
    expect(() => loadConfig({ file: '/nonexistent/settlement.yaml', env: {} })).toThrow(/Invalid config: cannot read \/nonexistent\/settlement\.yaml/);
  });
});
