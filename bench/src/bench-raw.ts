/**
 * The raw path's phases: the LOGGED BATCH ceiling (at the start of the run and on a closed-loop
 * step's messages), the latency reference, and the cost of database-level durability.
 */
import type { SettlementConfig } from '@settlement/config';
import { MarketCatalog, type SettlementMessage } from '@settlement/domain';
import { createSimulator, marketFromConfig, type Simulator } from '@settlement/simulator';
import { say } from './bench-log.js';
import type { BenchMachine } from './bench-machine.js';
import type { BenchOptions } from './bench-options.js';
import type { BenchKeyspaces } from './bench-stack.js';
import { CpuMeter } from './cpu.js';
import { DURABILITY_NODE_PORT, measureDurabilityCeilings, type DurabilityCeilingResult } from './durability-ceiling.js';
import { planRawBatches, rawChunking, runRawCeiling, type RawCeilingResult } from './raw-ceiling.js';
import { runRawLatency, type RawLatencyResult } from './raw-latency.js';
import { sequencedMessages } from './stream.js';

export interface RawCeilingMeasurement {
  readonly raw: RawCeilingResult;
  readonly rawCpuCores: Record<string, number>;
}

export type RawLatencyReference = RawLatencyResult & { cpuCores: Record<string, number> };

/** The half-max step's messages (stream positions [from, to)) and the rate they were offered at. */
export interface StreamSlice {
  readonly from: number;
  readonly to: number;
  readonly ratePerS: number;
}

export class RawPath {
  constructor(
    private readonly deps: {
      readonly options: BenchOptions;
      readonly rawConfig: Readonly<SettlementConfig>;
      readonly keyspaces: BenchKeyspaces;
      readonly machine: BenchMachine;
      /** The closed-loop step's bound on messages sent and not settled; the raw ceilings write the stream in order within it. */
      readonly unsettledMax: number;
    },
  ) {}

  private get messageCount(): number {
    return this.deps.options.warmUpMessages + 14_000 * this.deps.options.rawSeconds;
  }

  /** The start-of-run ceiling's stream: the same seed as the service's, so its warm-up is the service's warm-up. */
  startOfRunStream(): SettlementMessage[] {
    const { options, rawConfig } = this.deps;
    const rawSimulator = createSimulator({ market: marketFromConfig(rawConfig), messages: this.messageCount, users: options.userCount, seed: options.seed });
    return sequencedMessages(rawSimulator, new MarketCatalog(rawConfig), this.messageCount);
  }

  /** The raw ceiling at the start of the run: it sets the open-loop steps' offered rates. */
  measureStartOfRun(): Promise<RawCeilingMeasurement> {
    say(`raw ceiling: generating ${this.messageCount} messages for ${this.deps.options.userCount} users (${this.deps.options.warmUpMessages} warm-up)`);
    return this.measureCeiling(this.startOfRunStream(), this.deps.options.warmUpMessages, 'raw ceiling');
  }

  /**
   * The raw ceiling on `messages`, of which the first `warmUpCount` are written untimed first.
   * In a function of its own, so its stream and statements (hundreds of MB) can be collected
   * before whatever is measured next.
   */
  async measureCeiling(messages: SettlementMessage[], warmUpCount: number, what: string): Promise<RawCeilingMeasurement> {
    const { options, rawConfig, keyspaces, machine, unsettledMax } = this.deps;
    const { client: rawClient, writer: rawWriter, drop } = await keyspaces.openRaw();
    const plans = planRawBatches(rawWriter, messages, options.batchMessages, rawChunking(rawConfig), warmUpCount);
    // The statements hold what is needed; the messages can be collected meanwhile.
    messages.length = 0;
    const rawCpu = new CpuMeter(() => ({ cassandra: machine.cassandraPid, ...machine.otherNodes(), bench: process.pid }));
    await machine.waitForQuiet(`before the ${what}`);
    say(`${what}: writing for up to ${options.rawSeconds} s`);
    const result = await runRawCeiling({ client: rawClient, writer: rawWriter, plans, durationMs: options.rawSeconds * 1000, unsettledMax, onTimedStart: () => rawCpu.start() });
    const cpuCores = rawCpu.stop();
    await drop();
    return { raw: result, rawCpuCores: cpuCores };
  }

  /**
   * The latency reference: the half-max step's messages at its rate, through the leanest
   * in-process pipeline, with the service stopped (see raw-latency.ts). Undefined if it failed.
   */
  async measureLatencyReference(simulator: Simulator, catalog: MarketCatalog, half: StreamSlice): Promise<RawLatencyReference | undefined> {
    await this.deps.machine.waitForQuiet('before the raw latency reference');
    say(`raw latency reference: the half-max step's ${half.to - half.from} messages at ${half.ratePerS}/s, in-process`);
    try {
      return await this.measureLatency(sequencedMessages(simulator, catalog, half.to, half.from), half.ratePerS);
    } catch (error) {
      // A reference that failed must not cost the run it is a reference for.
      say(`raw latency reference failed, reported as missing: ${(error as Error).message}`);
      return undefined;
    }
  }

  private async measureLatency(messages: SettlementMessage[], ratePerS: number): Promise<RawLatencyReference> {
    const { options, rawConfig, keyspaces, machine } = this.deps;
    const { writer: rawWriter, drop } = await keyspaces.openRaw();
    const latencyOptions = { writer: rawWriter, ratePerS, batchMessagesMax: options.batchMessages, chunking: rawChunking(rawConfig) };
    try {
      // Untimed: prepares the statements (a first batch would otherwise carry that round trip).
      await runRawLatency({ ...latencyOptions, messages: messages.slice(0, 200) });
      const rawCpu = new CpuMeter(() => ({ cassandra: machine.cassandraPid, bench: process.pid }));
      rawCpu.start();
      const result = await runRawLatency({ ...latencyOptions, messages });
      return { ...result, cpuCores: rawCpu.stop() };
    } finally {
      await drop();
    }
  }

  /**
   * The cost of database-level durability (durability-ceiling.ts), on the start-of-run
   * ceiling's messages: last, so its second Cassandra disturbs nothing measured before.
   * Undefined if off or failed.
   */
  async measureDurabilityCost(dataDir: string): Promise<DurabilityCeilingResult | undefined> {
    const { options, rawConfig, unsettledMax } = this.deps;
    if (!options.durabilityCeilingOn) return undefined;
    say(`durability ceiling: a private Cassandra on port ${DURABILITY_NODE_PORT}, periodic then batch commit log`);
    try {
      return await measureDurabilityCeilings({
        config: rawConfig,
        messages: () => this.startOfRunStream(),
        warmUpCount: options.warmUpMessages,
        batchMessages: options.batchMessages,
        unsettledMax,
        durationMs: options.rawSeconds * 1000,
        heapMb: Number(process.env.CASSANDRA_HEAP_MB ?? 1024),
        dataDir,
        say,
      });
    } catch (error) {
      // A reference that failed must not cost the run it is a reference for.
      say(`durability ceiling failed, reported as missing: ${(error as Error).message}`);
      return undefined;
    }
  }
}
