/**
 * Validation of operator input (HTTP path parameters and bodies, CLI arguments). The same
 * schemas serve the API and the CLI, so both reject a bad id with the same message.
 */
import { z } from 'zod';
import { formatIssues } from '@settlement/config';
import { I64_MAX, U64_MAX, type MarketCatalog } from '@settlement/domain';
import { bigintReplacer } from './amounts.js';
import { InputError } from './input-error.js';

/** User ids are stored in signed 64-bit columns: 1-19 decimal digits, at most 2^63-1. */
export const userIdSchema = z
  .string()
  .regex(/^\d{1,19}$/, 'must be a decimal user id (1-19 digits)')
  .transform((v) => BigInt(v))
  .refine((v) => v <= I64_MAX, 'must be at most 2^63-1');

/** Trade ids are the engine's u64: 1-20 decimal digits, at most 2^64-1. */
export const tradeIdSchema = z
  .string()
  .regex(/^\d{1,20}$/, 'must be a decimal trade id (1-20 digits)')
  .transform((v) => BigInt(v))
  .refine((v) => v <= U64_MAX, 'must be at most 2^64-1');

/** BullMQ job ids: generated numbers, or custom ids without ':' (which BullMQ rejects). */
export const jobIdSchema = z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, 'must be a job id (letters, digits, _ or -)');

export function symbolSchema(catalog: MarketCatalog) {
  const names = [...catalog.markets.keys()];
  return z.string().refine((v) => catalog.markets.has(v), `must be a configured symbol: ${names.join(', ')}`);
}

export function shardSchema(catalog: MarketCatalog) {
  return z.string().refine((v) => catalog.isShard(v), `must be a shard: ${catalog.shards.join(', ')}`);
}

/**
 * Parses `value` (an object whose keys are the field names) or throws an InputError whose
 * message names every bad field and whose `field` is the first one.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const result = schema.safeParse(value, { reportInput: true });
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({ ...issue, message: withInput(issue.message, issue.input) }));
  throw new InputError(formatIssues(what, issues), issues[0]?.path.join('.') || '(root)');
}

/** Appends the offending value (short, quoted) so the operator sees what was sent. */
function withInput(message: string, input: unknown): string {
  if (input === undefined || (typeof input === 'object' && input !== null)) return message;
  const shown = JSON.stringify(input, bigintReplacer);
  return `${message} (got ${shown.length > 60 ? `${shown.slice(0, 57)}...` : shown})`;
}
