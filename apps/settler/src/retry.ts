/**
 * In-place retries (p-retry). A settlement job never fails: Cassandra timeouts, unavailability and lost
 * connections are retried with exponential backoff for as long as they last, and the batch
 * retried is the same one (same statements, same timestamp), so a write that did apply is
 * rewritten with identical cells.
 */
import cassandra from 'cassandra-driver';
import pRetry from 'p-retry';
import type { Closing } from './closing.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';

const codes = cassandra.types.responseErrorCodes;
const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  codes.serverError,
  codes.unavailableException,
  codes.overloaded,
  codes.isBootstrapping,
  codes.truncateError,
  codes.writeTimeout,
  codes.readTimeout,
  codes.readFailure,
  codes.writeFailure,
]);

/** Kind of a failure, for logs and the retries metric. */
export function classifyError(error: unknown): string {
  if (error instanceof cassandra.errors.NoHostAvailableError) return 'no_host';
  if (error instanceof cassandra.errors.OperationTimedOutError) return 'client_timeout';
  if (error instanceof cassandra.errors.BusyConnectionError) return 'busy_connection';
  if (error instanceof cassandra.errors.ResponseError) {
    if (error.code === codes.writeTimeout) {
      const writeType = (error as { writeType?: string }).writeType;
      return writeType === undefined ? 'write_timeout' : `write_timeout_${writeType.toLowerCase()}`;
    }
    if (error.code === codes.unavailableException) return 'unavailable';
    if (error.code === codes.readTimeout) return 'read_timeout';
    if (TRANSIENT_CODES.has(error.code)) return 'server_transient';
    return 'server_rejected';
  }
  if (error instanceof cassandra.errors.DriverError) return 'driver';
  return 'other';
}

/**
 * Cassandra ≥ 2.2 refuses a batch above batch_size_fail_threshold_in_kb with an InvalidRequest
 * "Batch too large": retrying the same batch can never succeed, splitting it can.
 */
export function isBatchTooLarge(error: unknown): boolean {
  return error instanceof cassandra.errors.ResponseError && error.code === codes.invalid && /batch too large/i.test(error.message);
}

/** Errors that are expected to pass (timeouts, unavailability, lost hosts); others are logged as errors but still retried. */
export function isTransient(error: unknown): boolean {
  return !['server_rejected', 'other'].includes(classifyError(error));
}

/** Delay before retry `attempt` (0-based): initial × 2^attempt, capped, with ±20 % jitter so replicas do not retry in step. */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(base * (0.8 + 0.4 * random())));
}

export interface RetryOptions {
  readonly shard: string;
  readonly initialMs: number;
  readonly maxMs: number;
  readonly closing: Closing;
  /** Each failed attempt (0-based), with the failure's kind; the delay before the next is p-retry's. */
  readonly onRetry: (error: unknown, attempt: number, kind: string) => void;
}

/**
 * Runs `op` until it succeeds (p-retry: exponential backoff from `initialMs`, doubling up to
 * `maxMs`, randomized so replicas do not retry in step). When the settler is stopping, gives up
 * with ShutdownRequestedError instead of waiting, so the job can go back to the queue unfinished.
 */
export async function retryInPlace<T>(op: () => Promise<T>, options: RetryOptions): Promise<T> {
  const { closing } = options;
  try {
    return await pRetry(op, {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: options.initialMs,
      maxTimeout: options.maxMs,
      factor: 2,
      randomize: true,
      signal: closing.signal,
      onFailedAttempt: ({ error, attemptNumber }) => options.onRetry(error, attemptNumber - 1, classifyError(error)),
      shouldRetry: () => !closing.isSet,
    });
  } catch (error) {
    if (closing.isSet) throw new ShutdownRequestedError(options.shard);
    throw error;
  }
}
