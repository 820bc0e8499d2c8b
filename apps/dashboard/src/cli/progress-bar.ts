/**
 * A one-line progress bar for `settle reconcile --wait`. On a terminal it redraws in place;
 * elsewhere (CI logs, pipes) it prints a line only when the whole percent changes, so a log
 * stays short.
 */
export interface ProgressSnapshot {
  /** 0-100; undefined while unknown (the job has not reported progress yet). */
  readonly percent: number | undefined;
  /** Short status shown after the bar, e.g. "active, 120/1000 users". */
  readonly label: string;
}

export const BAR_WIDTH = 30;

export function renderBar(snapshot: ProgressSnapshot, width = BAR_WIDTH): string {
  const percent = snapshot.percent === undefined ? undefined : Math.max(0, Math.min(100, snapshot.percent));
  const filled = percent === undefined ? 0 : Math.round((percent / 100) * width);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
  const shown = percent === undefined ? '  ?%' : `${String(Math.floor(percent)).padStart(3)}%`;
  return `[${bar}] ${shown} ${snapshot.label}`;
}

/**
 * The reconciler reports progress as a number (0-100) or as an object with `percent`, or with
 * `done`/`total` (or `usersChecked`/`usersTotal`); anything else is "unknown".
 */
export function progressPercent(progress: unknown): number | undefined {
  if (typeof progress === 'number' && Number.isFinite(progress)) return progress;
  if (typeof progress !== 'object' || progress === null) return undefined;
  const p = progress as Record<string, unknown>;
  if (typeof p['percent'] === 'number') return p['percent'];
  const pairs: Array<[string, string]> = [['done', 'total'], ['usersChecked', 'usersTotal'], ['checked', 'total']];
  for (const [doneKey, totalKey] of pairs) {
    const done = Number(p[doneKey]);
    const total = Number(p[totalKey]);
    if (Number.isFinite(done) && Number.isFinite(total) && total > 0) return (done / total) * 100;
  }
  return undefined;
}

export class ProgressBar {
  private lastPrinted: string | undefined;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly width = BAR_WIDTH,
  ) {}

  update(snapshot: ProgressSnapshot): void {
    const line = renderBar(snapshot, this.width);
    if (this.out.isTTY === true) {
      this.out.write(`\r${line}\x1b[K`);
      this.lastPrinted = line;
      return;
    }
    const key = `${snapshot.percent === undefined ? '?' : Math.floor(snapshot.percent)} ${snapshot.label.split(',')[0]}`;
    if (key !== this.lastPrinted) {
      this.out.write(`${line}\n`);
      this.lastPrinted = key;
    }
  }

  /** Ends the redrawn line so the next output starts on its own line. */
  finish(): void {
    if (this.out.isTTY === true && this.lastPrinted !== undefined) this.out.write('\n');
  }
}
