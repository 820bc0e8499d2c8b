import type { Logger } from 'pino';

type Step = { readonly name: string; readonly run: () => Promise<unknown> };

/** A named cleanup step. */
export type CloseStep = readonly [name: string, run: () => Promise<unknown>];

/**
 * Runs `steps` in order, each even if one before failed (every failure is logged with the
 * step's name); resolves to the first failure, undefined when every step succeeded. The one
 * close loop of every app: a failing step must never leave the later ones (connections, the
 * Cassandra client) open.
 */
export async function runCloseSteps(steps: readonly CloseStep[], logger: Pick<Logger, 'error'> & Partial<Pick<Logger, 'debug'>>): Promise<unknown> {
  let first: unknown;
  for (const [name, run] of steps) {
    try {
      logger.debug?.({ step: name }, 'close step');
      await run();
    } catch (error) {
      logger.error({ err: error, step: name }, 'close step failed');
      first ??= error;
    }
  }
  return first;
}

/**
 * Runs registered cleanup steps in reverse order of registration on SIGTERM/SIGINT, each even
 * if an earlier one fails, then exits 0 (or 1 if a step failed). Calling it twice returns the
 * same promise.
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private running: Promise<number> | undefined;

  constructor(private readonly logger: Logger, private readonly timeoutMs = 30_000) {}

  add(name: string, run: () => Promise<unknown>): void {
    this.steps.push({ name, run });
  }

  listen(): void {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.once(signal, () => {
        this.logger.info({ signal }, 'shutting down');
        void this.run().then((code) => process.exit(code));
      });
    }
  }

  run(): Promise<number> {
    this.running ??= this.runSteps();
    return this.running;
  }

  private async runSteps(): Promise<number> {
    const timer = setTimeout(() => {
      this.logger.error({ timeoutMs: this.timeoutMs }, 'shutdown timed out');
      process.exit(1);
    }, this.timeoutMs);
    timer.unref();
    const failed = await runCloseSteps([...this.steps].reverse().map((step) => [step.name, step.run] as const), this.logger);
    const code = failed === undefined ? 0 : 1;
    clearTimeout(timer);
    this.logger.info({ code }, 'stopped');
    return code;
  }
}
