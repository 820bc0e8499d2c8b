/**
 * The simulator's command-line flags, validated with zod: a wrong value stops the CLI with a
 * message naming the flag. Defaults come from the config's `simulator` and `zmq` sections.
 */
import { Command } from 'commander';
import { z } from 'zod';
import type { SettlementConfig } from '@settlement/config';

const endpoint = z.string().regex(/^tcp:\/\/[^\s]+:(\d+|\*)$/, 'must be tcp://host:port');
const rate01 = z.coerce.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1');

const cliSchema = z.object({
  messages: z.coerce.number().int('must be an integer').min(1, 'must be at least 1').max(100_000_000, 'must be at most 100000000'),
  users: z.coerce.number().int('must be an integer').min(2, 'must be at least 2'),
  rate: z.coerce.number().int('must be an integer').min(0, 'must not be negative'),
  seed: z.coerce.number().int('must be an integer').min(0, 'must not be negative').max(2 ** 32 - 1, 'must fit in 32 bits'),
  mode: z.enum(['push', 'pub'], { error: 'must be push or pub' }),
  endpoint,
  expectedOut: z.string().min(1).optional(),
  dupRate: rate01,
  reorderRate: rate01,
  malformedRate: rate01,
  feeShare: rate01,
  replayBind: endpoint.optional(),
  journalFile: z.string().min(1).optional(),
  numberFunding: z.boolean(),
  lingerMs: z.coerce.number().int('must be an integer').min(0, 'must not be negative').optional(),
});

export type CliOptions = z.output<typeof cliSchema>;

/** Thrown for a bad flag; the message names it. */
export class CliOptionsError extends Error {
  readonly code = 'INVALID_FLAG';
  constructor(message: string) {
    super(message);
    this.name = 'CliOptionsError';
  }
}

const FLAG_NAMES: Record<string, string> = {
  expectedOut: '--expected-out', dupRate: '--dup-rate', reorderRate: '--reorder-rate', malformedRate: '--malformed-rate',
  feeShare: '--fee-share', replayBind: '--replay-bind', journalFile: '--journal-file', numberFunding: '--no-number-funding', lingerMs: '--linger-ms',
};

/** The simulator's flags; defaults from config (`undefined`: help shown without a config, naming the keys). */
function buildCommand(config: Readonly<SettlementConfig> | undefined): Command {
  const fromConfig = (key: keyof SettlementConfig['simulator']): string => (config === undefined ? `config simulator.${key}` : String(config.simulator[key]));
  return new Command()
    .name('simulator')
    .description('Matching-engine stand-in: sends a deterministic, self-consistent settlement stream over ZeroMQ')
    .option('--messages <n>', 'valid messages to send', '10000')
    .option('--users <n>', 'users moving money', fromConfig('users'))
    .option('--rate <msgsPerSecond>', 'offered rate; 0 = as fast as possible', fromConfig('rate_per_second'))
    .option('--seed <n>', 'seed of the stream', fromConfig('seed'))
    .option('--mode <push|pub>', 'push: connect to the ingestor PULL; pub: bind a PUB socket', 'push')
    .option('--endpoint <tcp://host:port>', 'push: ingestor endpoint; pub: endpoint to bind')
    .option('--expected-out <file>', 'write the expected settled result (JSON) here')
    .option('--dup-rate <p>', 'probability of resending a message', '0')
    .option('--reorder-rate <p>', 'probability of swapping a message with the next', '0')
    .option('--malformed-rate <p>', 'probability of a malformed message after a valid one', '0')
    .option('--fee-share <p>', 'share of trades with fees', fromConfig('fee_share'))
    .option('--replay-bind <tcp://host:port>', 'serve the replay endpoint (REP) here')
    .option('--journal-file <file>', 'append every message sent to this file (JSON lines)')
    .option('--no-number-funding', 'send funding events with sequence_id 0, like the original engine')
    .option('--linger-ms <n>', 'with --replay-bind: keep serving this long after sending (default: until SIGTERM)')
    .exitOverride();
}

/** `simulator --help`: the flags (defaults from config when it loads). */
export function simulatorFlagsHelp(config: Readonly<SettlementConfig> | undefined): string {
  return buildCommand(config).helpInformation();
}

export function parseCliOptions(argv: readonly string[], config: Readonly<SettlementConfig>): CliOptions {
  const program = buildCommand(config).parse([...argv], { from: 'user' });
  const raw = program.opts<Record<string, unknown>>();
  const mode = raw['mode'];
  const defaultEndpoint = mode === 'pub' ? config.simulator.pub_bind : `tcp://${config.zmq.bind_host}:${config.zmq.settlement_port}`;
  const result = cliSchema.safeParse({ ...raw, endpoint: raw['endpoint'] ?? defaultEndpoint });
  if (!result.success) {
    const detail = result.error.issues
      .map((issue) => {
        const key = String(issue.path[0] ?? '');
        return `${FLAG_NAMES[key] ?? `--${key}`}: ${issue.message}`;
      })
      .join('; ');
    throw new CliOptionsError(`Invalid simulator flags: ${detail}`);
  }
  return result.data;
}
