import { describe, expect, it } from 'vitest';
import { appendFileSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EnqueueUnit } from './enqueue-unit.js';
import { Spool } from './spool.js';
import { mergeState } from './state.js';

const unit = (n: number): EnqueueUnit => ({
  jobs: [{ queue: 'settle-funding', name: 'settle', jobId: `funding-${n}-${n}`, data: { n, text: 'ünïcödé' } }],
  marks: { funding: String(n) },
});

function fresh(bytesMax = 1 << 20): { file: string; spool: Spool } {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'spool-')), 'ingest-spool.jsonl');
  return { file, spool: new Spool(file, bytesMax) };
}

describe('Spool', () => {
  it('drains units in the order they were appended, in batches, and empties itself at the end', () => {
    const { file, spool } = fresh();
    expect(spool.active).toBe(false);
    for (let n = 1; n <= 5; n++) spool.append(unit(n));
    expect(spool.active).toBe(true);
    expect(spool.depthUnits).toBe(5);
    const first = spool.nextBatch(2);
    expect(first.units).toEqual([unit(1), unit(2)]);
    spool.commit(first);
    expect(spool.finishIfDrained()).toBe(false);
    spool.append(unit(6));
    const rest = spool.nextBatch(100);
    expect(rest.units.map((u) => u.marks['funding'])).toEqual(['3', '4', '5', '6']);
    spool.commit(rest);
    expect(spool.active).toBe(false);
    expect(spool.finishIfDrained()).toBe(true);
    expect(statSync(file).size).toBe(0);
    spool.close();
  });

  it('resumes a drain where the previous process stopped, and restores the state marks', () => {
    const { file, spool } = fresh();
    for (let n = 1; n <= 4; n++) spool.append(unit(n));
    spool.commit(spool.nextBatch(1));
    spool.close();
    const reopened = new Spool(file, 1 << 20);
    const pending = reopened.pending();
    expect(pending.map((u) => u.marks['funding'])).toEqual(['2', '3', '4']);
    expect(reopened.depthUnits).toBe(3);
    expect(mergeState({ funding: '1', btc_usdt: '9' }, pending)).toEqual(new Map([['funding', 4n], ['btc_usdt', 9n]]));
    reopened.close();
  });

  it('cuts off a torn last line (a write interrupted by power loss) when opened', () => {
    const { file, spool } = fresh();
    spool.append(unit(1));
    spool.close();
    appendFileSync(file, '{"jobs":[{"queue":"settle-fund');
    const reopened = new Spool(file, 1 << 20);
    expect(reopened.tornBytesDropped).toBe(30);
    expect(reopened.pending()).toEqual([unit(1)]);
    expect(readFileSync(file, 'utf8').endsWith('\n')).toBe(true);
    reopened.close();
  });

  it('refuses a unit beyond its size limit with SPOOL_FULL', () => {
    const { spool } = fresh(200);
    spool.append(unit(1));
    expect(() => spool.append(unit(2))).toThrow(expect.objectContaining({ code: 'SPOOL_FULL' }));
    expect(spool.full).toBe(false);
    spool.close();
  });
});
