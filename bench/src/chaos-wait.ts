/** Waiting helpers of the chaos run: its stores come and go, so every wait must be able to give up. */

export { setTimeout as sleep } from 'node:timers/promises';

/** The promise's value, or `fallback` when it fails or takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<T>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } catch {
    return fallback;
  } finally {
    clearTimeout(timer);
  }
}
