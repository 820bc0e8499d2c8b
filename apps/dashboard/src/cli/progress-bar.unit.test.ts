import { describe, expect, it } from 'vitest';
import { progressPercent, ProgressBar, renderBar } from './progress-bar.js';

class Sink {
  text = '';
  constructor(readonly isTTY: boolean) {}
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

describe('progress bar', () => {
  it('renders a fixed-width bar with the percent and label', () => {
    expect(renderBar({ percent: 50, label: 'active' }, 10)).toBe('[#####-----]  50% active');
    expect(renderBar({ percent: undefined, label: 'waiting' }, 4)).toBe('[----]   ?% waiting');
    expect(renderBar({ percent: 140, label: 'x' }, 4)).toBe('[####] 100% x');
  });

  it('reads the reconciler progress shapes', () => {
    expect(progressPercent(42)).toBe(42);
    expect(progressPercent({ phase: 'users', percent: 12.5, usersChecked: 3 })).toBe(12.5);
    expect(progressPercent({ done: 1, total: 4 })).toBe(25);
    expect(progressPercent(null)).toBeUndefined();
    expect(progressPercent({ total: 0, done: 0 })).toBeUndefined();
  });

  it('redraws in place on a terminal, prints a line per whole-percent change elsewhere', () => {
    const tty = new Sink(true);
    const bar = new ProgressBar(tty as unknown as NodeJS.WritableStream, 4);
    bar.update({ percent: 10, label: 'active' });
    bar.update({ percent: 10.4, label: 'active' });
    bar.finish();
    expect(tty.text).toBe('\r[----]  10% active\x1b[K\r[----]  10% active\x1b[K\n');

    const log = new Sink(false);
    const quiet = new ProgressBar(log as unknown as NodeJS.WritableStream, 4);
    for (const percent of [10, 10.4, 10.9, 60]) quiet.update({ percent, label: 'active, 3 users' });
    expect(log.text).toBe('[----]  10% active, 3 users\n[##--]  60% active, 3 users\n');
  });
});
