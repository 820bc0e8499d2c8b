/**
 * CLI: npx tsx apps/simulator/src/main.ts --messages 100000 --rate 5000 --expected-out data/expected.json
 * Sends the stream, writes the expected result, and (with --replay-bind) keeps serving the
 * replay endpoint until SIGTERM or --linger-ms.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, loadConfig, type SettlementConfig } from '@settlement/config';
import { appHelpText, createLogger, wantsHelp } from '@settlement/runtime';
import { CliOptionsError, parseCliOptions, simulatorFlagsHelp } from './cli-options.js';
import { createSimulator, marketFromConfig } from './simulator.js';

/** Flags, then the config keys the simulator reads; never starts anything. */
function help(): string {
  let config: Readonly<SettlementConfig> | undefined;
  try {
    config = loadConfig();
  } catch {
    // Help works without a readable config: defaults are then named by their config key.
    config = undefined;
  }
  return `${simulatorFlagsHelp(config)}\n${appHelpText('simulator')}`;
}

async function main(): Promise<number> {
  if (wantsHelp(process.argv.slice(2))) {
    process.stdout.write(help());
    return 0;
  }
  const config = loadConfig();
  const options = parseCliOptions(process.argv.slice(2), config);
  const logger = createLogger({ app: 'simulator', level: config.log_level });
  const abort = new AbortController();
  let stopRequested = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'stopping');
      stopRequested = true;
      abort.abort();
    });
  }

  const simulator = createSimulator({
    market: marketFromConfig(config),
    messages: options.messages,
    users: options.users,
    seed: options.seed,
    feeShare: options.feeShare,
    duplicateRate: options.dupRate,
    reorderRate: options.reorderRate,
    malformedRate: options.malformedRate,
    numberFundingEvents: options.numberFunding,
    journalFile: options.journalFile,
    logger,
  });
  if (options.expectedOut !== undefined) {
    simulator.writeExpected(options.expectedOut);
    logger.info({ file: options.expectedOut }, 'expected result written');
  }
  const replay = options.replayBind === undefined ? undefined : await simulator.serveReplay(options.replayBind);
  if (replay) logger.info({ endpoint: replay.endpoint }, 'replay endpoint serving');

  logger.info({ mode: options.mode, endpoint: options.endpoint, frames: simulator.schedule.entries.length, ratePerSecond: options.rate }, 'sending');
  const report = await simulator.send({
    mode: options.mode,
    endpoint: options.endpoint,
    ratePerSecond: options.rate,
    topic: config.zmq.topic,
    signal: abort.signal,
    progressIntervalMs: config.simulator.progress_interval_ms,
  });
  logger.info(
    {
      sent: report.sent,
      elapsedMs: Math.round(report.elapsedMs),
      achievedRatePerSecond: Math.round(report.achievedRatePerSecond),
      duplicates: simulator.schedule.duplicates,
      swaps: simulator.schedule.swaps,
      malformed: simulator.schedule.malformed.length,
      aborted: report.aborted,
    },
    'sent',
  );
  if (replay && !stopRequested) {
    const lingerMs = options.lingerMs;
    // Both waits end at SIGTERM/SIGINT (the abort signal): a stop is never held up by --linger-ms.
    await (lingerMs === undefined
      ? new Promise<void>((resolve) => abort.signal.addEventListener('abort', () => resolve()))
      : sleep(lingerMs, undefined, { signal: abort.signal }).catch((error: unknown) => {
          if (!abort.signal.aborted) throw error;
        }));
  }
  await simulator.close();
  return report.aborted && !stopRequested ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof CliOptionsError) {
      process.stderr.write(`simulator: ${error.message}\n`);
    } else if (error instanceof Error && 'code' in error && String(error.code).startsWith('commander.')) {
      // commander already printed help or the usage error.
      process.exit(String(error.code) === 'commander.helpDisplayed' ? 0 : 1);
    } else {
      process.stderr.write(`simulator: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    }
    process.exit(1);
  },
);
