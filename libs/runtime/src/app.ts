import { ConfigError, loadConfig, type SettlementConfig } from '@settlement/config';
import { createLogger, type Logger } from './logger.js';
import { Shutdown } from './shutdown.js';

export interface AppContext {
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  readonly shutdown: Shutdown;
}

/**
 * Process wiring shared by every app: config (YAML + env, validated once) → logger → the app's
 * own start function, which registers its cleanup steps on `shutdown`. A bad config stops the
 * process with one line naming the key; an error during start is logged and exits 1.
 */
export async function runApp(app: string, start: (ctx: AppContext) => Promise<void>): Promise<void> {
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
    await start({ config, logger, shutdown });
  } catch (error) {
    logger.fatal({ err: error }, 'start-up failed');
    await shutdown.run();
    process.exit(1);
  }
}
