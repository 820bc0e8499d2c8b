/**
 * The shard's balance rows as this process last wrote or read them, bounded. It is only trusted
 * while nobody else has written the shard since: the settler checks that against the watermark
 * before each job and drops the cache otherwise.
 */
import type { BalanceRow, BalanceRowKey } from '@settlement/domain';

export interface CacheState {
  readonly lastSeq: bigint;
  readonly writeTs: bigint;
  /** False when the shard has no watermark row yet, i.e. no balance row of this shard exists. */
  readonly exists: boolean;
}

export class BalanceCache {
  private readonly rows = new Map<BalanceRowKey, BalanceRow>();
  private state: CacheState | undefined;
  /** Every row of the shard is in the cache: a miss is a row that does not exist. */
  private completeFlag = false;
  /** Bumped whenever the cache stops standing for what it stood for (reset, invalidate). */
  private generationCount = 0;

  constructor(private readonly maxRows: number) {}

  get size(): number {
    return this.rows.size;
  }

  get complete(): boolean {
    return this.completeFlag;
  }

  /** Changes at every reset or invalidate: rows read before then may no longer be current. */
  get generation(): number {
    return this.generationCount;
  }

  get lastSeq(): bigint | undefined {
    return this.state?.lastSeq;
  }

  /** True when the cache reflects exactly the stored shard state `wm`, and the job continues the chain from it. */
  isCurrent(prevLastSeq: bigint | undefined, wm: CacheState): boolean {
    const s = this.state;
    return s !== undefined && s.lastSeq === wm.lastSeq && s.writeTs === wm.writeTs && (prevLastSeq === undefined || prevLastSeq === s.lastSeq);
  }

  /** Forgets every row; the cache now stands for the stored state `wm`. */
  reset(wm: CacheState): void {
    this.generationCount += 1;
    this.rows.clear();
    this.state = { ...wm };
    this.completeFlag = !wm.exists;
  }

  /** Drops everything: the next job reloads. */
  invalidate(): void {
    this.generationCount += 1;
    this.rows.clear();
    this.state = undefined;
    this.completeFlag = false;
  }

  get(key: BalanceRowKey): BalanceRow | undefined {
    return this.rows.get(key);
  }

  has(key: BalanceRowKey): boolean {
    return this.rows.has(key);
  }

  /** Records rows read from storage (before any change of this batch). */
  putLoaded(rows: Iterable<[BalanceRowKey, BalanceRow]>): void {
    for (const [key, row] of rows) if (!this.rows.has(key)) this.rows.set(key, row);
  }

  /**
   * Every row of the shard as read by a scan that started at `generation`: cached where the cache
   * holds none (a row it holds was written by this process since, or read after the scan), and
   * the cache is complete from now on. False, and nothing changed, when the cache was reset or
   * invalidated since the scan started (its rows may be another writer's, or older).
   */
  completeWith(rows: Iterable<[BalanceRowKey, BalanceRow]>, generation: number): boolean {
    if (generation !== this.generationCount || this.state === undefined) return false;
    this.putLoaded(rows);
    this.completeFlag = true;
    this.evict();
    return this.completeFlag;
  }

  /** After an acknowledged batch: its rows and the state it moved the shard to. */
  commit(rows: readonly BalanceRow[], keyOf: (row: BalanceRow) => BalanceRowKey, state: CacheState): void {
    // Eviction drops the rows first cached (a Map keeps insertion order); updating a row in
    // place keeps its slot, which is cheaper than moving it and good enough at this size.
    for (const row of rows) this.rows.set(keyOf(row), row);
    this.state = { ...state };
    this.evict();
  }

  private evict(): void {
    if (this.rows.size <= this.maxRows) return;
    this.completeFlag = false;
    for (const key of this.rows.keys()) {
      if (this.rows.size <= this.maxRows) break;
      this.rows.delete(key);
    }
  }
}
