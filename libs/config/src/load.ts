import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './config-error.js';
import { settlementConfigSchema, type SettlementConfig } from './schema.js';

export const DEFAULT_CONFIG_FILE = 'config/settlement.yaml';

type Env = Readonly<Record<string, string | undefined>>;

/** Environment variables that override one config key each. */
export const ENV_OVERRIDES: ReadonlyArray<{ env: string; key: readonly string[]; parse: (v: string) => unknown }> = [
  { env: 'SCYLLA_HOSTS', key: ['scylladb', 'hosts'], parse: (v) => v.split(',').map((h) => h.trim()).filter(Boolean) },
  { env: 'SCYLLA_KEYSPACE', key: ['scylladb', 'keyspace'], parse: (v) => v },
  { env: 'SCYLLA_LOCAL_DC', key: ['scylladb', 'local_data_center'], parse: (v) => v },
  { env: 'REDIS_URL', key: ['redis', 'url'], parse: (v) => v },
  { env: 'REDIS_PREFIX', key: ['redis', 'prefix'], parse: (v) => v },
  { env: 'ZMQ_SETTLEMENT_PORT', key: ['zmq', 'settlement_port'], parse: numberOrRaw },
  { env: 'ZMQ_PUB_ENDPOINT', key: ['zmq', 'pub_endpoint'], parse: (v) => v },
  { env: 'ZMQ_REPLAY_ENDPOINT', key: ['zmq', 'replay_endpoint'], parse: (v) => v },
  { env: 'DATA_DIR', key: ['data_dir'], parse: (v) => v },
  { env: 'BATCH_MAX_MESSAGES', key: ['batch', 'max_messages'], parse: numberOrRaw },
  { env: 'BATCH_MAX_WAIT_MS', key: ['batch', 'max_wait_ms'], parse: numberOrRaw },
  { env: 'RECONCILIATION_ENABLED', key: ['reconciliation', 'enabled'], parse: strictBoolean },
  { env: 'DASHBOARD_HOST', key: ['dashboard', 'host'], parse: (v) => v },
  { env: 'DASHBOARD_PORT', key: ['dashboard', 'port'], parse: numberOrRaw },
  { env: 'DASHBOARD_TOKEN', key: ['dashboard', 'token'], parse: (v) => v },
  { env: 'LOG_LEVEL', key: ['log_level'], parse: (v) => v },
];

/** Numbers stay raw strings when they do not parse, so zod reports the key with the bad value. */
function numberOrRaw(value: string): unknown {
  return /^-?\d+$/.test(value) ? Number(value) : value;
}

/** A typo must not silently become false. */
function strictBoolean(value: string): unknown {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return value;
}

function setPath(target: Record<string, unknown>, key: readonly string[], value: unknown): void {
  let node = target;
  for (const part of key.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[key[key.length - 1]!] = value;
}

export function formatIssues(what: string, issues: readonly z.core.$ZodIssue[]): string {
  const parts = issues.map((issue) => {
    const key = issue.path.length > 0 ? issue.path.join('.') : '(root)';
    return `${key}: ${issue.message}`;
  });
  return `Invalid ${what}: ${parts.join('; ')}`;
}

/** Validates an already-read config object (after env overrides). Throws ConfigError. */
export function parseConfig(raw: unknown, env: Env = {}): Readonly<SettlementConfig> {
  const merged: Record<string, unknown> =
    typeof raw === 'object' && raw !== null ? structuredClone(raw as Record<string, unknown>) : {};
  for (const override of ENV_OVERRIDES) {
    const value = env[override.env];
    if (value !== undefined && value !== '') setPath(merged, override.key, override.parse(value));
  }
  const result = settlementConfigSchema.safeParse(merged);
  if (!result.success) throw new ConfigError(formatIssues('config', result.error.issues));
  return deepFreeze(result.data);
}

/**
 * Reads the YAML config (SETTLEMENT_CONFIG or config/settlement.yaml), applies env overrides,
 * validates it, and resolves data_dir against the config file's project root.
 */
export function loadConfig(options: { file?: string; env?: Env; cwd?: string } = {}): Readonly<SettlementConfig> {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const file = path.resolve(cwd, options.file ?? env.SETTLEMENT_CONFIG ?? DEFAULT_CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(`Invalid config: cannot read ${file}: ${(error as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = numbersWhereExact(parseYaml(text, { intAsBigInt: true }));
  } catch (error) {
    throw new ConfigError(`Invalid config: ${file} is not valid YAML: ${(error as Error).message}`);
  }
  const config = parseConfig(raw, env);
  const dataDir = path.resolve(cwd, config.data_dir);
  return Object.freeze({ ...config, data_dir: dataDir });
}

/**
 * YAML integers are read as bigint, so an id above 2^53 keeps every digit (as a number it would
 * be rounded before any check could see it). Those a number holds exactly become numbers again,
 * for the keys that take numbers (ports, sizes, asset ids); larger ones stay bigint, which the
 * id keys take and the number keys refuse, naming the key.
 */
function numbersWhereExact(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }
  if (Array.isArray(value)) return value.map(numbersWhereExact);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, numbersWhereExact(v)]));
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
