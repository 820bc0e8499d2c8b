/**
 * The setup of the reconciler's tests against the real settler: a test bed (keyspace, settle
 * queues on one Redis connection: the settler's openTestBed), and a deterministic stream that
 * an in-process settler has settled. The settler is stopped once the stream is settled, unless
 * the test needs it running.
 */
import type { Logger } from '@settlement/runtime';
// Test only: the real settler runs in-process and its deterministic stream generator feeds it.
// Application code never imports another app.
import { startSettler, type RunningSettler } from '@settlement/settler';
// The settler's test helpers have no entry of their own (no alias reaches apps/settler/test).
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of another app, see above
import { enqueue, openTestBed, waitForWatermarks, type TestBed } from '../../settler/test/harness.js';
// eslint-disable-next-line @nx/enforce-module-boundaries -- test helpers of another app, see above
import { generateStream, toJobs, type GeneratedStream } from '../../settler/test/stream-generator.js';

/** Messages per settle job. */
const JOB_MESSAGES = 50;

export interface SettledBedOptions {
  /** reconciliation.* settings of the test config. */
  readonly reconciliation: Record<string, unknown>;
  /** The stream: see generateStream. */
  readonly messages: number;
  readonly users: number;
  readonly seed: number;
  /** How long the settler gets to settle the stream, ms. */
  readonly settleTimeoutMs?: number;
  /** Leave the settler running after the stream is settled (close() stops it). */
  readonly keepSettler?: boolean;
}

export interface SettledBed extends TestBed {
  readonly stream: GeneratedStream;
  /** The settler that settled the stream, while it runs (keepSettler). */
  readonly settler: RunningSettler | undefined;
  /** Stops the settler if it runs, empties the queues and drops the keyspace. */
  close(): Promise<void>;
}

export async function openSettledBed(options: SettledBedOptions, logger: Logger): Promise<SettledBed> {
  const bed = await openTestBed({ reconciliation: options.reconciliation });
  let settler: RunningSettler | undefined;
  try {
    settler = await startSettler({ config: bed.ks.config, logger });
    const stream = generateStream({ catalog: bed.catalog, messages: options.messages, users: options.users, seed: options.seed });
    await enqueue(bed.queues, toJobs(stream.messages, JOB_MESSAGES));
    await waitForWatermarks(bed.watermarks, stream.lastSeqByShard, options.settleTimeoutMs ?? 60_000);
    if (options.keepSettler !== true) {
      await settler.close();
      settler = undefined;
    }
    const running = settler;
    return {
      ...bed,
      stream,
      settler: running,
      async close() {
        await running?.close();
        await bed.close();
      },
    };
  } catch (error) {
    // A setup that failed half-way leaves nothing behind for the next test file.
    await settler?.close().catch(() => undefined);
    await bed.close().catch(() => undefined);
    throw error;
  }
}
