/**
 * Command-line flags of the project's scripts (npm run bench, chaos, start, …): node's parseArgs
 * plus `--help` / `-h`, which prints the script's usage and exits 0, and a one-line error with
 * the usage, exit 2, for an unknown flag or a missing value (instead of a stack trace).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseScriptArgs<const T extends Options>(usage: string, options: T): ReturnType<typeof parseArgs<{ options: T }>>['values'] {
  const text = `${usage.trim()}\n`;
  let parsed;
  try {
    parsed = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h' } } });
  } catch (error) {
    if (!(error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) throw error;
    process.stderr.write(`${error.message}\n\n${text}`);
    process.exit(2);
  }
  const { help, ...values } = parsed.values as { help?: boolean };
  if (help === true) {
    process.stdout.write(text);
    process.exit(0);
  }
  return values as ReturnType<typeof parseArgs<{ options: T }>>['values'];
}
