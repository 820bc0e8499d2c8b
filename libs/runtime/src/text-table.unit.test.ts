import { describe, expect, it } from 'vitest';
import { renderTable } from './text-table.js';

describe('renderTable', () => {
  it('pads text left and numbers right', () => {
    expect(renderTable(['asset', 'amount'], [['BTC', '1.5'], ['USDT', '100.25']])).toBe(
      ['asset  amount', '-----  ------', 'BTC       1.5', 'USDT   100.25'].join('\n'),
    );
  });

  it("counts '-' as a number and keeps no trailing spaces", () => {
    expect(renderTable(['step', 'p99 ms', 'note'], [['warm-up', '-', ''], ['half max', '12.5', 'ok']])).toBe(
      ['step      p99 ms  note', '--------  ------  ----', 'warm-up        -', 'half max    12.5  ok'].join('\n'),
    );
  });
});
