import type { SettlementConfig } from '@settlement/config';
import type { Ops } from '../ops/context.js';
import type { CliIo } from './program.js';

/** What a command registered from its own file gets from `buildProgram`. */
export interface CommandContext {
  readonly io: CliIo;
  getConfig(): Readonly<SettlementConfig>;
  /** Connections, opened on first use and closed by runCli. */
  getOps(): Ops;
  /** --json was given. */
  json(): boolean;
  print(text: string): void;
  printJson(value: unknown): void;
}
