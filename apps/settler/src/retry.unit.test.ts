import cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { Closing } from './closing.js';
import { backoffDelayMs, classifyError, isBatchTooLarge, isTransient, retryInPlace } from './retry.js';
import { ShutdownRequestedError } from './shutdown-requested-error.js';

const codes = cassandra.types.responseErrorCodes;

function writeTimeout(writeType: string): Error {
  return Object.assign(new cassandra.errors.ResponseError(codes.writeTimeout, 'timeout'), { writeType });
}

describe('classifyError', () => {
  it('tells the Cassandra failures that pass from those that do not', () => {
    expect(classifyError(writeTimeout('BATCH'))).toBe('write_timeout_batch');
    expect(classifyError(writeTimeout('BATCH_LOG'))).toBe('write_timeout_batch_log');
    expect(classifyError(new cassandra.errors.ResponseError(codes.unavailableException, 'x'))).toBe('unavailable');
    expect(classifyError(new cassandra.errors.NoHostAvailableError({}))).toBe('no_host');
    expect(classifyError(new cassandra.errors.OperationTimedOutError('x'))).toBe('client_timeout');
    expect(classifyError(new cassandra.errors.ResponseError(codes.invalid, 'x'))).toBe('server_rejected');
    expect(isTransient(writeTimeout('BATCH'))).toBe(true);
    expect(isTransient(new cassandra.errors.ResponseError(codes.syntaxError, 'x'))).toBe(false);
    expect(isTransient(new TypeError('bug'))).toBe(false);
  });
});

describe('isBatchTooLarge', () => {
  it('recognises Cassandra refusing a batch above batch_size_fail_threshold_in_kb, and nothing else', () => {
    // The text Cassandra 2.2-5.0 sends with the InvalidRequest.
    expect(isBatchTooLarge(new cassandra.errors.ResponseError(codes.invalid, 'Batch too large'))).toBe(true);
    expect(isBatchTooLarge(new cassandra.errors.ResponseError(codes.invalid, 'unconfigured table x'))).toBe(false);
    expect(isBatchTooLarge(writeTimeout('BATCH'))).toBe(false);
    expect(isBatchTooLarge(new Error('Batch too large'))).toBe(false);
  });
});

describe('backoffDelayMs', () => {
  it('doubles from the initial delay up to the cap, within ±20 %', () => {
    expect([0, 1, 2, 3, 10].map((a) => backoffDelayMs(a, 50, 5_000, () => 0.5))).toEqual([50, 100, 200, 400, 5_000]);
    expect(backoffDelayMs(0, 50, 5_000, () => 0)).toBe(40);
    expect(backoffDelayMs(40, 50, 5_000, () => 0.999_999)).toBe(6_000);
  });
});

describe('retryInPlace', () => {
  it('retries the same operation until it succeeds', async () => {
    let calls = 0;
    const kinds: string[] = [];
    const result = await retryInPlace(
      async () => {
        calls += 1;
        if (calls < 3) throw writeTimeout('BATCH');
        return 'done';
      },
      { shard: 's', initialMs: 1, maxMs: 2, closing: new Closing(), onRetry: (_e, _a, kind) => kinds.push(kind) },
    );
    expect(result).toBe('done');
    expect(kinds).toEqual(['write_timeout_batch', 'write_timeout_batch']);
  });

  it('gives up with ShutdownRequestedError when the settler is stopping', async () => {
    const closing = new Closing();
    let calls = 0;
    const running = retryInPlace(
      async () => {
        calls += 1;
        throw new cassandra.errors.NoHostAvailableError({});
      },
      { shard: 'btc_usdt', initialMs: 10_000, maxMs: 10_000, closing, onRetry: () => closing.trigger() },
    );
    await expect(running).rejects.toBeInstanceOf(ShutdownRequestedError);
    await expect(running).rejects.toMatchObject({ code: 'SHUTDOWN_REQUESTED', shard: 'btc_usdt' });
    // No further attempt once stopping: the 10 s wait ends at once and nothing runs again.
    expect(calls).toBe(1);
  });
});
