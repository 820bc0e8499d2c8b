/**
 * Which shards' settlers are busy: a shard with a job waiting or being settled is backlogged,
 * and its partial jobs wait longer to fill (ingestor.backlog_wait_ms): a job cut while the
 * settler writes the previous one could only queue behind it, so the shard's next job is cut
 * when the settler is free and holds everything that arrived meanwhile — one job per write
 * instead of a small job that waits a whole write and a larger one after it.
 *
 * Learned from the queues' wait and active lists (LLEN, pipelined), read
 *  - at once for a shard whose settler announced a finished job (JobsDoneNotice, libs/runtime):
 *    the usual way a held job is released;
 *  - for every shard every `backloggedMs` while one is backlogged (a lost notice, a settler
 *    that stopped) and every `idleMs` otherwise, and only while messages are buffered.
 * A failed read changes nothing.
 */
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

export interface BacklogTarget {
  readonly bufferedMessages: number;
  setBacklogged(shard: string, backlogged: boolean): void;
}

export class BacklogWatch {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private anyBacklogged = false;
  /** Shards announced done while a read of them was in flight: read again after it. */
  private readonly again = new Set<string>();
  private readonly reading = new Set<string>();

  constructor(
    private readonly redis: Redis,
    private readonly queues: ReadonlyMap<string, Queue>,
    private readonly intervals: { readonly backloggedMs: number; readonly idleMs: number },
    private readonly target: BacklogTarget,
  ) {}

  start(): void {
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  /** A settler finished a job of `shard`: read whether it is free now. */
  readonly jobDone = (shard: string): void => {
    if (this.stopped || !this.queues.has(shard)) return;
    if (this.reading.has(shard)) {
      this.again.add(shard);
      return;
    }
    void this.read([shard]);
  };

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.poll(), this.anyBacklogged ? this.intervals.backloggedMs : this.intervals.idleMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    // Nothing buffered, nothing to decide: an idle ingestor does not ask.
    if (this.target.bufferedMessages === 0) this.anyBacklogged = false;
    else this.anyBacklogged = await this.read([...this.queues.keys()]);
    this.schedule();
  }

  /** Reads the shards' lists and tells the target; resolves whether any of them is busy. */
  private async read(shards: readonly string[]): Promise<boolean> {
    for (const shard of shards) this.reading.add(shard);
    let any = false;
    try {
      const pipeline = this.redis.pipeline();
      for (const shard of shards) {
        const queue = this.queues.get(shard)!;
        pipeline.llen(queue.keys.wait!).llen(queue.keys.active!);
      }
      const results = await pipeline.exec();
      if (results === null) return this.anyBacklogged;
      shards.forEach((shard, i) => {
        const [waitError, waiting] = results[2 * i]!;
        const [activeError, active] = results[2 * i + 1]!;
        if (waitError !== null || activeError !== null) return;
        const busy = Number(waiting) > 0 || Number(active) > 0;
        any ||= busy;
        this.target.setBacklogged(shard, busy);
      });
      return any;
    } catch {
      return this.anyBacklogged;
    } finally {
      for (const shard of shards) this.reading.delete(shard);
      const again = shards.filter((shard) => this.again.delete(shard));
      if (again.length > 0 && !this.stopped) void this.read(again);
    }
  }
}
