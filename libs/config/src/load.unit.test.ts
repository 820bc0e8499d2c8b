import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './config-error.js';
import { loadConfig, parseConfig } from './load.js';

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
    expect(config.scylladb.history_bucket_seqs).toBe(65_536n);
    expect(Object.isFrozen(config.scylladb)).toBe(true);
  });

  it('takes the history bucket width as an exact integer in range, else names the key', () => {
    const base = {
      scylladb: { hosts: ['h'] },
      redis: { url: 'redis://h' },
      zmq: {},
      assets: [{ id: 1, code: 'BTC', decimals: 8 }, { id: 2, code: 'USDT', decimals: 6 }],
      symbols: [{ name: 'btc_usdt', base: 1, quote: 2 }],
    };
    const withWidth = (v: unknown) => parseConfig({ ...base, scylladb: { hosts: ['h'], history_bucket_seqs: v } });
    expect(withWidth(16).scylladb.history_bucket_seqs).toBe(16n);
    expect(withWidth('1048576').scylladb.history_bucket_seqs).toBe(1_048_576n);
    expect(() => withWidth(0)).toThrow('Invalid config: scylladb.history_bucket_seqs: must be 1..1048576 (1048576), got 0');
    expect(() => withWidth(2_000_000)).toThrow(/scylladb\.history_bucket_seqs: must be 1\.\.1048576/);
    expect(() => withWidth(1.5)).toThrow(/scylladb\.history_bucket_seqs: must be an exact integer/);
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

describe('ids in config (issue 18.6)', () => {
  /** A minimal config file with extra YAML lines. */
  const load = (extra: string, symbol = '{ name: btc_usdt, base: 1, quote: 2 }') =>
    loadConfig({
      file: writeConfig(`
scylladb: { hosts: ["127.0.0.1"] }
redis: { url: "redis://127.0.0.1:6379" }
zmq: {}
assets: [{ id: 1, code: BTC, decimals: 8 }, { id: 2, code: USDT, decimals: 6 }]
symbols: [${symbol}]
${extra}
`),
      env: {},
    });
  const U63_MAX = 2n ** 63n - 1n;

  it('reads an id above 2^53 written as a YAML integer with every digit', () => {
    expect(load('fee_account_user_id: 9223372036854775807').fee_account_user_id).toBe(U63_MAX);
    expect(load('fee_account_user_id: 9007199254740993').fee_account_user_id).toBe(2n ** 53n + 1n);
    expect(load('fee_account_user_id: "9007199254740993"').fee_account_user_id).toBe(2n ** 53n + 1n);
    expect(load('fee_account_user_id: 42').fee_account_user_id).toBe(42n);
    // Keys that take numbers still get numbers.
    expect(load('fee_account_user_id: 1').zmq.settlement_port).toBe(5557);
  });

  it('refuses an id above 2^63-1, as a YAML integer or as digits, naming the key and the value', () => {
    const message = 'Invalid config: fee_account_user_id: must be 0..2^63-1 (9223372036854775807), got 18446744073709551615';
    expect(() => load('fee_account_user_id: 18446744073709551615')).toThrow(message);
    expect(() => load('fee_account_user_id: "18446744073709551615"')).toThrow(message);
    expect(() => load('fee_account_user_id: 9223372036854775808')).toThrow('Invalid config: fee_account_user_id: must be 0..2^63-1 (9223372036854775807), got 9223372036854775808');
    expect(() => load('fee_account_user_id: -1')).toThrow('Invalid config: fee_account_user_id: must be 0..2^63-1 (9223372036854775807), got -1');
  });

  it('refuses an id that a number cannot hold exactly, or that is not an integer', () => {
    expect(() => load('fee_account_user_id: 1.8446744073709552e19')).toThrow(
      /^Invalid config: fee_account_user_id: must be an exact integer \(got the number 18446744073709552000\)/,
    );
    expect(() => load('fee_account_user_id: 1.5')).toThrow(/^Invalid config: fee_account_user_id: must be an exact integer \(got the number 1\.5\)/);
    expect(() => load('fee_account_user_id: "12a"')).toThrow('Invalid config: fee_account_user_id: must be a non-negative integer written in digits (got "12a")');
    expect(() => load('fee_account_user_id: true')).toThrow('Invalid config: fee_account_user_id: must be an integer: digits, or a YAML integer');
    // A config object built in code: a number above 2^53 has lost its digits already.
    const raw = { scylladb: { hosts: ['h'] }, redis: { url: 'redis://h' }, zmq: {}, assets: [{ id: 1, code: 'BTC', decimals: 8 }], symbols: [] };
    expect(() => parseConfig({ ...raw, fee_account_user_id: 2 ** 60 })).toThrow(/fee_account_user_id: must be an exact integer \(got the number 1152921504606847000\)/);
  });

  it('refuses a number key above 2^53 by its key, and a quote divisor of 0', () => {
    expect(() => load('', '{ name: btc_usdt, base: 1, quote: 2, quote_divisor: 0 }')).toThrow(
      'Invalid config: symbols.0.quote_divisor: must be 1..10^30 (1000000000000000000000000000000), got 0',
    );
    expect(load('', '{ name: btc_usdt, base: 1, quote: 2, quote_divisor: 100000000000000000000 }').symbols[0]!.quote_divisor).toBe(10n ** 20n);
    expect(() => load('batch: { max_messages: 18446744073709551615 }')).toThrow(/^Invalid config: batch\.max_messages: /);
  });
});
