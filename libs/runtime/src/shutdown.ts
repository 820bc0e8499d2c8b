import type { Logger } from 'pino';

type Step = { readonly name: string; readonly run: () => Promise<unknown> };

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
    let code = 0;
    for (const step of [...this.steps].reverse()) {
      try {
        await step.run();
      } catch (error) {
        code = 1;
        this.logger.error({ err: error, step: step.name }, 'shutdown step failed');
      }
    }
    clearTimeout(timer);
    this.logger.info({ code }, 'stopped');
    return code;
  }
}
