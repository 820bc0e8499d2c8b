import { ConfigError, loadConfig, type SettlementConfig } from '@settlement/config';
import type { Registry } from 'prom-client';
import { appHelpText, wantsHelp } from './app-help.js';
import { createLogger, type Logger } from './logger.js';
import { createProcessMetrics } from './process-metrics.js';
import { Shutdown } from './shutdown.js';

export interface AppContext {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  readonly shutdown: Shutdown;
  /** This process's Node.js metrics (createProcessMetrics), for its heartbeat or /metrics. */
  readonly processMetrics: Registry;
}

/**
 * Process wiring shared by every app: config (YAML + env, validated once) → logger and process
 * metrics → the app's own start function, which registers its cleanup steps on `shutdown`. A
 * bad config stops the process with one line naming the key; an error during start is logged
 * and exits 1. `--help` (or `-h`) prints what the app is and the config keys it reads, and
 * exits 0 without reading the config or starting anything.
 */
export async function runApp(app: string, start: (ctx: AppContext) => Promise<void>): Promise<void> {
  if (wantsHelp(process.argv.slice(2))) {
    // Before the config is read or anything connects: help must work on any machine.
    process.stdout.write(appHelpText(app), () => process.exit(0));
    return;
  }
  let config: Readonly<SettlementConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${app}: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger({ app, level: config.log_level });
  const shutdown = new Shutdown(logger);
  shutdown.listen();
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled rejection');
    process.exit(1);
  });
  try {
    await start({ config, logger, shutdown, processMetrics: createProcessMetrics(app) });
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    await shutdown.run();
    process.exit(1);
  }
}
