/**
 * The one polling helper of the tests, the benchmark and the tools. No vitest import here: the
 * benchmark and the ingestor's perf script load it outside vitest (through @settlement/tools).
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `check` every `intervalMs` until it returns a value (not undefined or false), or fails
 * naming `what` after `timeoutMs`. A check that throws (a client still reconnecting after a
 * Cassandra restart, seen in CI) counts as "not yet"; its last error is in the timeout's message.
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${String(lastError)})` : ''}`);
    await sleep(intervalMs);
  }
}
