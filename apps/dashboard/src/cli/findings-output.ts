/** `settle reconcile-status`: the findings of a run as a terminal table. */
import { renderTable } from '@settlement/runtime';
import type { DisplayPair, AmountPair, FindingList, FindingView } from '../ops/findings.js';

/** Longer messages are cut in the table (--json has them whole). */
const MESSAGE_CHARS_MAX = 70;

function amounts(view: FindingView, which: 'expected' | 'stored' | 'difference'): DisplayPair | AmountPair | null {
  // Whole units where the asset is configured (exact: no float), else minor units.
  return view.display?.[which] ?? view[which];
}

/** One row per finding: kind, user, asset, shard, expected vs stored (available, frozen), fixed. */
export function renderFindings(list: FindingList, shown: number): string {
  if (list.findings.length === 0) return '  no errors or warnings recorded';
  const cell = (p: DisplayPair | AmountPair | null, field: 'available' | 'frozen') => (p === null ? '-' : String(p[field]));
  const table = renderTable(
    ['kind', 'user', 'asset', 'shard', 'expected available', 'stored available', 'expected frozen', 'stored frozen', 'fixed', 'message'],
    list.findings.map((f) => {
      const expected = amounts(f, 'expected');
      const stored = amounts(f, 'stored');
      return [
        f.error ? f.kind : `${f.kind} (warning)`,
        f.userId?.toString() ?? '-',
        f.asset ?? '-',
        f.shard ?? '-',
        cell(expected, 'available'),
        cell(stored, 'available'),
        cell(expected, 'frozen'),
        cell(stored, 'frozen'),
        f.fixed ? 'yes' : 'no',
        f.message.length > MESSAGE_CHARS_MAX ? `${f.message.slice(0, MESSAGE_CHARS_MAX - 3)}...` : f.message,
      ];
    }),
  );
  const more = list.truncated ? `\n  (first ${shown} shown; --limit N for more, --json for the messages)` : '';
  return `${table}${more}`;
}
