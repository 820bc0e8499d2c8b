import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import type { SettlementConfig } from '@settlement/config';

/** Writes a validated config back as YAML for child processes (bigints as decimal strings). */
export function writeConfigYaml(config: Readonly<SettlementConfig>, file: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  const plain: unknown = JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
  writeFileSync(file, stringifyYaml(plain));
  return file;
}
