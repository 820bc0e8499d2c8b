/**
 * What an app's `--help` says about its configuration: every key of the sections it reads, with
 * its default and the environment variable that overrides it, generated from the one schema so
 * the help cannot drift from what is validated.
 */
import { z } from 'zod';
import { DEFAULT_CONFIG_FILE, ENV_OVERRIDES } from './load.js';
import { settlementConfigSchema } from './schema.js';

interface JsonSchemaNode {
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, JsonSchemaNode>>;
  readonly required?: readonly string[];
  readonly default?: unknown;
  readonly enum?: readonly unknown[];
  readonly items?: JsonSchemaNode;
}

export interface ConfigKey {
  /** Dotted path, e.g. `settler.batch_bytes_max`; `assets[]` for lists of objects. */
  readonly key: string;
  /** The default as YAML would show it, `(required)` or `-` (optional, no default). */
  readonly defaultText: string;
  /** Allowed values of an enum. */
  readonly values?: readonly string[] | undefined;
  readonly env?: string | undefined;
}

function flatten(node: JsonSchemaNode, prefix: string, required: boolean, out: ConfigKey[]): void {
  if (node.properties !== undefined) {
    for (const [name, child] of Object.entries(node.properties)) {
      flatten(child, prefix === '' ? name : `${prefix}.${name}`, node.required?.includes(name) ?? false, out);
    }
    return;
  }
  const envOf = ENV_OVERRIDES.find((o) => o.key.join('.') === prefix)?.env;
  const defaultText =
    node.default !== undefined ? JSON.stringify(node.default, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) : required ? '(required)' : '-';
  const isList = node.type === 'array' && node.items?.properties !== undefined;
  out.push({
    key: isList ? `${prefix}[] (${Object.keys(node.items!.properties!).join(', ')})` : prefix,
    defaultText,
    values: node.enum?.map(String),
    env: envOf,
  });
}

/** Every key of the config, in schema order. */
export function configKeys(): ConfigKey[] {
  const schema = z.toJSONSchema(settlementConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchemaNode;
  const out: ConfigKey[] = [];
  flatten(schema, '', true, out);
  return out;
}

/**
 * The help text of an app: its usage line, then the config keys under `sections` (top-level
 * names such as `settler` or `redis`, or a dotted key) with defaults and env overrides.
 */
export function configHelp(app: { name: string; usage: string; description: string; sections: readonly string[] }): string {
  const keys = configKeys().filter((k) => app.sections.some((s) => k.key === s || k.key.startsWith(`${s}.`) || k.key.startsWith(`${s}[]`)));
  const width = Math.max(...keys.map((k) => k.key.length));
  const lines = keys.map((k) => {
    const extra = [k.values === undefined ? '' : ` one of ${k.values.join('|')}`, k.env === undefined ? '' : ` (env ${k.env})`].join('');
    return `  ${k.key.padEnd(width)}  ${k.defaultText}${extra}`;
  });
  return [
    `Usage: ${app.usage}`,
    '',
    app.description,
    '',
    `Config: YAML from $SETTLEMENT_CONFIG, else ${DEFAULT_CONFIG_FILE}; env variables override single keys.`,
    `Keys this process reads (default; see README "Configuration"):`,
    ...lines,
    '',
  ].join('\n');
}
