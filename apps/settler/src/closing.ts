/** A latch set once when the settler stops; sleeps end early when it is set. */
export class Closing {
  private set = false;
  private readonly waiters = new Set<() => void>();

  get isSet(): boolean {
    return this.set;
  }

  trigger(): void {
    this.set = true;
    for (const wake of this.waiters) wake();
    this.waiters.clear();
  }

  /** Resolves after `ms`, or at once when closing is (or becomes) set. */
  sleep(ms: number): Promise<void> {
    if (this.set) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.waiters.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.waiters.add(wake);
    });
  }
}
