/**
 * A matching-engine stand-in: a deterministic, self-consistent stream (generator), the order it
 * is sent in with injected faults (schedule), a journal of what was sent and the replay endpoint
 * that serves it, and the expected settled result. Usable in-process (benchmarks, chaos runs,
 * tests) and from the CLI (main.ts).
 */
import type { CatalogInput } from '@settlement/domain';
import type { Logger } from '@settlement/runtime';
import { expectedResult, writeExpected, type ExpectedResult } from './expected.js';
import { generateStream, type GeneratedStream, type SimMessage } from './generator.js';
import { Journal } from './journal.js';
import { serveReplay, type ReplayServer } from './replay-server.js';
import { buildSchedule, EntryType, type Schedule } from './schedule.js';
import { sendPaced, type SendOptions, type SendReport } from './sender.js';

export interface SimulatorOptions {
  /** Assets, symbols and fee account (the config's sections of the same names). */
  readonly market: CatalogInput;
  /** Valid messages to generate. */
  readonly messages: number;
  /** Users moving money. Default 1 000. */
  readonly users?: number;
  /** Seed of the stream. Default 1. */
  readonly seed?: number;
  /** Share of trades with fees, 0-1. Default 0.3. */
  readonly feeShare?: number;
  /** Probability that a valid message is sent twice. Default 0. */
  readonly duplicateRate?: number;
  /** Probability that a valid message is swapped with the next. Default 0. */
  readonly reorderRate?: number;
  /** Probability that a malformed message follows a valid one. Default 0. */
  readonly malformedRate?: number;
  /** User ids start above this. Default 1 000. */
  readonly userIdBase?: bigint;
  /** output_sequence of the first trade − 1. Default 0. */
  readonly sequenceBase?: bigint;
  /** Number funding events (sequence_id > 0). Default true; false sends 0 like the original engine. */
  readonly numberFundingEvents?: boolean;
  /** Also append what is sent to this file (JSON lines). */
  readonly journalFile?: string;
  readonly logger?: Logger;
}

export interface Simulator {
  /** The valid messages in sequence order (per stream). */
  readonly messages: readonly SimMessage[];
  readonly stream: GeneratedStream;
  readonly schedule: Schedule;
  readonly journal: Journal;
  /** Frames in send order, completed with the given send time (for callers with their own socket). */
  frameAt(entryIndex: number, nowMs: number): string;
  /** Sends the whole schedule (or until aborted). */
  send(options: SendOptions): Promise<SendReport>;
  /** Journaled messages of a stream ("global", a symbol, or "funding") from `fromSeq` on. */
  replay(stream: string, fromSeq: bigint, limit: number): string[];
  /** Serves the replay endpoint (ZMQ REP) on `bind` (port "*" picks a free one). */
  serveReplay(bind: string): Promise<ReplayServer>;
  expected(): ExpectedResult;
  writeExpected(file: string): ExpectedResult;
  close(): Promise<void>;
}

export function createSimulator(options: SimulatorOptions): Simulator {
  const seed = options.seed ?? 1;
  const stream = generateStream({
    market: options.market,
    messages: options.messages,
    users: options.users ?? 1_000,
    seed,
    feeShare: options.feeShare ?? 0.3,
    userIdBase: options.userIdBase ?? 1_000n,
    sequenceBase: options.sequenceBase ?? 0n,
    numberFundingEvents: options.numberFundingEvents ?? true,
  });
  const schedule = buildSchedule(
    stream.messages.length,
    { duplicateRate: options.duplicateRate ?? 0, reorderRate: options.reorderRate ?? 0, malformedRate: options.malformedRate ?? 0 },
    seed,
    options.market,
  );
  const journal = new Journal(stream.messages, options.journalFile);
  const servers: ReplayServer[] = [];

  const frameAt = (entryIndex: number, nowMs: number): string => {
    const entry = schedule.entries[entryIndex]!;
    if (entry.type === EntryType.MALFORMED) return journal.noteMalformed(entry.index, schedule.malformed[entry.index]!.raw);
    // A duplicate repeats the journaled bytes: an engine resending, not a new message.
    return journal.bytesFor(stream.messages[entry.index]!, nowMs);
  };

  return {
    messages: stream.messages,
    stream,
    schedule,
    journal,
    frameAt,
    send: (sendOptions) => sendPaced(schedule.entries.length, frameAt, { logger: options.logger, ...sendOptions }),
    replay: (name, fromSeq, limit) => journal.replay(name, fromSeq, limit),
    async serveReplay(bind) {
      const server = await serveReplay(journal, bind, options.logger);
      servers.push(server);
      return server;
    },
    expected: () => expectedResult(stream, schedule, seed),
    writeExpected(file) {
      const result = expectedResult(stream, schedule, seed);
      writeExpected(file, result);
      return result;
    },
    async close() {
      await Promise.allSettled(servers.map((s) => s.close()));
      await journal.close();
    },
  };
}

/** The market part of a settlement config, as the simulator takes it. */
export function marketFromConfig(config: {
  assets: CatalogInput['assets'];
  symbols: CatalogInput['symbols'];
  fee_account_user_id: bigint;
}): CatalogInput {
  return { assets: config.assets, symbols: config.symbols, fee_account_user_id: config.fee_account_user_id };
}
