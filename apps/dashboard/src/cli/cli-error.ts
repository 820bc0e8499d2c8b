import type { ExitCode } from './exit-codes.js';

/** Ends a command with a message on stderr and a specific exit code. */
export class CliError extends Error {
  readonly code = 'CLI_ERROR' as const;

  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
