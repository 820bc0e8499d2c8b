/**
 * A latch set once when the settler stops: an AbortSignal, so sleeps (node:timers/promises)
 * and anything else that takes a signal end early when it is set.
 */
import { setTimeout as delay } from 'node:timers/promises';

export class Closing {
  private readonly controller = new AbortController();

  get isSet(): boolean {
    return this.controller.signal.aborted;
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  trigger(): void {
    this.controller.abort();
  }

  /** Resolves after `ms`, or at once when closing is (or becomes) set. */
  async sleep(ms: number): Promise<void> {
    // The only rejection of an aborted delay is the abort itself: stopping is not an error here.
    await delay(ms, undefined, { signal: this.controller.signal }).catch(() => undefined);
  }
}
