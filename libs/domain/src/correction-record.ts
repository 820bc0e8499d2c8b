/**
 * The record of an applied reconciler correction, balance_corrections.rows: each row it changed,
 * before and after. The settler writes it in the correction's batch (libs/scylla
 * settlement-writer) and reads it back when the correction's job comes again (balances.ts), to
 * tell a correction already whole in storage from one only partly visible. JSON, bigints as
 * decimal strings; the key order below is the stored text's.
 */
import { z } from 'zod';
import type { BalanceRow } from './balances.js';
import { DomainError } from './domain-error.js';
import type { CorrectedRow } from './correction-plan.js';

const signed = z.string().regex(/^-?\d{1,20}$/, 'must be a decimal integer string').transform((v) => BigInt(v));
const unsigned = z.string().regex(/^\d{1,20}$/, 'must be an unsigned decimal integer string').transform((v) => BigInt(v));
const side = z.object({ available: signed, locked: signed, version: unsigned });
const recordSchema = z.array(z.object({ userId: unsigned, assetId: z.number().int().nonnegative(), recreated: z.boolean(), before: side, after: side }));

export function encodeCorrectedRows(rows: readonly CorrectedRow[]): string {
  const side = (r: BalanceRow) => ({ available: r.available.toString(), locked: r.locked.toString(), version: r.version.toString() });
  return JSON.stringify(rows.map((c) => ({ userId: c.after.userId.toString(), assetId: c.after.assetId, recreated: c.recreated, before: side(c.before), after: side(c.after) })));
}

/** The rows of a stored record; throws DomainError naming the first bad field (e.g. `0.after.locked`). */
export function decodeCorrectedRows(json: string): CorrectedRow[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new DomainError('INVALID_JOB', `Invalid correction record: (root): not JSON: ${json.slice(0, 80)}`);
  }
  const result = recordSchema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = issue.path.join('.') || '(root)';
    throw new DomainError('INVALID_JOB', `Invalid correction record: ${field}: ${issue.message}`, field);
  }
  return result.data.map((r) => {
    const row = (v: { available: bigint; locked: bigint; version: bigint }): BalanceRow => ({ userId: r.userId, assetId: r.assetId, ...v });
    return { before: row(r.before), after: row(r.after), recreated: r.recreated };
  });
}
