/**
 * The chaos run's stream: a simulator holding exactly the wanted number of trades (with
 * duplicated, reordered and malformed messages), sent at the offered rate to the ingestor.
 */
import type { Logger } from 'pino';
import type { SettlementConfig } from '@settlement/config';
import { createSimulator, marketFromConfig, sendPaced, type SendReport, type Simulator, type SimulatorOptions } from '@settlement/simulator';
import type { ChaosOptions } from './chaos-types.js';

/**
 * A simulator whose stream holds exactly `trades` trades and ends with the last of them. The
 * share of trades grows along a stream (at first most users must deposit and lock before they
 * trade), so it is measured, not guessed: generate more than enough, then cut at the wanted
 * trade. The generator is prefix-stable: the first n messages do not depend on how many follow.
 */
function simulatorWithTrades(trades: number, options: Omit<SimulatorOptions, 'messages'>): Simulator {
  for (let messages = trades * 2; ; messages *= 2) {
    const probe = createSimulator({ ...options, messages, logger: undefined });
    let seen = 0;
    const last = probe.messages.findIndex((m) => m.kind === 'trade' && ++seen === trades);
    void probe.close();
    if (last < 0) continue;
    const simulator = createSimulator({ ...options, messages: last + 1 });
    const got = simulator.messages.filter((m) => m.kind === 'trade').length;
    if (got !== trades) throw new Error(`simulator stream of ${last + 1} messages holds ${got} trades, expected ${trades}`);
    return simulator;
  }
}

/** The run's simulator: `options.trades` trades from `options.seed`, with 1 % duplicates, 1 % swaps and 0.2 % malformed. */
export function chaosSimulator(options: ChaosOptions, config: Readonly<SettlementConfig>): Simulator {
  return simulatorWithTrades(options.trades, {
    market: marketFromConfig(config),
    users: options.users,
    seed: options.seed,
    duplicateRate: 0.01,
    reorderRate: 0.01,
    malformedRate: 0.002,
    logger: options.logger,
  });
}

/**
 * The simulator's own pacing, with the send time of each malformed frame noted: a lost one is
 * then explained by what happened right after it was sent.
 */
export class PacedStream {
  /** Send time of each malformed frame, ms on the run's clock. */
  readonly malformedSentAtMs = new Map<string, number>();
  /** Frames handed to the socket so far. */
  framesSent = 0;
  /** Stream start to last message sent, ms; 0 until then. */
  sendMs = 0;
  /** Settles when every frame was sent; a failure ends the run where it is awaited. */
  readonly done: Promise<SendReport>;

  constructor(simulator: Simulator, config: Readonly<SettlementConfig>, ratePerSecond: number, sinceStreamMs: () => number, log: Logger) {
    const malformedFrames = new Set(simulator.schedule.malformed.map((m) => m.raw));
    const frameAt = (i: number, nowMs: number): string => {
      this.framesSent = Math.max(this.framesSent, i + 1);
      const frame = simulator.frameAt(i, nowMs);
      if (malformedFrames.has(frame)) this.malformedSentAtMs.set(frame, sinceStreamMs());
      return frame;
    };
    this.done = sendPaced(simulator.schedule.entries.length, frameAt, {
      mode: 'push',
      endpoint: `tcp://127.0.0.1:${config.zmq.settlement_port}`,
      ratePerSecond,
      lingerMs: 600_000,
      logger: log,
    });
    void this.done.then(
      (r) => {
        this.sendMs = sinceStreamMs();
        log.info({ sent: r.sent, sendMs: this.sendMs }, 'stream sent');
      },
      // Awaited by the run, where a failure ends it.
      () => undefined,
    );
  }
}
