/**
 * A user's history for the API and the CLI: trades (one row per side the user took) and funding
 * events, newest first, cursor-paged. Query parameters are validated with zod (a bad one is an
 * InputError naming it); ids and amounts stay bigint (decimal strings in JSON).
 *
 * The cursor is opaque to clients: base64url of the reader's position plus a fingerprint of the
 * query it belongs to, so a cursor replayed against another user, symbol or time range is refused
 * instead of silently paging through the wrong partition.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { MarketCatalog } from '@settlement/domain';
import { UserHistoryReader, type HistoryPosition, type UserLedgerEvent, type UserTrade } from '@settlement/scylla';
import { formatMinorUnits } from './amounts.js';
import type { Ops } from './context.js';
import { InputError } from './input-error.js';
import { parseInput, symbolSchema } from './params.js';

/** Rows per page when the request does not say. */
export const HISTORY_LIMIT_DEFAULT = 100;
/** Largest page a request may ask for. */
export const HISTORY_LIMIT_MAX = 1000;

/** A time bound: milliseconds since the epoch (digits) or an ISO-8601 date/time. */
export const timeSchema = z.string().transform((value, ctx) => {
  if (/^\d{1,16}$/.test(value)) return BigInt(value);
  if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value)) {
    const ms = Date.parse(value);
    if (Number.isFinite(ms) && ms >= 0) return BigInt(ms);
  }
  ctx.addIssue({ code: 'custom', message: 'must be milliseconds since the epoch or an ISO-8601 time such as 2024-01-31T12:00:00Z' });
  return z.NEVER;
});

const limitSchema = z
  .string()
  .regex(/^\d{1,7}$/, `must be an integer from 1 to ${HISTORY_LIMIT_MAX}`)
  .transform(Number)
  .refine((n) => n >= 1 && n <= HISTORY_LIMIT_MAX, `must be an integer from 1 to ${HISTORY_LIMIT_MAX}`);

const cursorSchema = z.string().regex(/^[A-Za-z0-9_-]{1,8192}$/, 'must be the nextCursor of a previous page');

export function tradeHistoryQuerySchema(catalog: MarketCatalog) {
  return z
    .strictObject({
      symbol: symbolSchema(catalog).optional(),
      from: timeSchema.optional(),
      to: timeSchema.optional(),
      limit: limitSchema.optional(),
      cursor: cursorSchema.optional(),
    })
    .refine((q) => q.from === undefined || q.to === undefined || q.from <= q.to, { message: 'must not be after to', path: ['from'] });
}

export const ledgerHistoryQuerySchema = z.strictObject({ limit: limitSchema.optional(), cursor: cursorSchema.optional() });

/** `from` and `to` are inclusive, ms since the epoch (compared with the trade's settled_at). */
export type TradeHistoryQuery = z.output<ReturnType<typeof tradeHistoryQuerySchema>>;

/** A page as the API and the CLI give it (the reader's HistoryPage, its position made a cursor). */
export interface HistoryResponsePage<T> {
  readonly items: T[];
  /** Pass as `cursor` for the next page; null after the last one. */
  readonly nextCursor: string | null;
}

export interface UserTradeView extends UserTrade {
  /** settled_at as ISO-8601 (settled_at is the engine's ms timestamp). */
  readonly settledAtIso: string | null;
  readonly display: { readonly price: string; readonly quantity: string; readonly quoteAmount: string };
}

export interface UserLedgerEventView extends UserLedgerEvent {
  readonly asset: string;
  readonly createdAtIso: string | null;
  readonly display: { readonly amount: string };
}

const readers = new WeakMap<Ops, UserHistoryReader>();

/** The history reader of these connections (built once; it holds only query texts). */
export function historyReaderOf(ops: Ops): UserHistoryReader {
  let reader = readers.get(ops);
  if (reader === undefined) {
    reader = new UserHistoryReader(ops.scylla, ops.config.scylladb.keyspace, [...ops.catalog.markets.keys()]);
    readers.set(ops, reader);
  }
  return reader;
}

function fingerprint(parts: readonly unknown[]): string {
  return createHash('sha256')
    .update(JSON.stringify(parts, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)))
    .digest('base64url')
    .slice(0, 12);
}

export function encodeCursor(position: HistoryPosition, query: readonly unknown[]): string {
  return Buffer.from(JSON.stringify({ q: fingerprint(query), p: position })).toString('base64url');
}

export function decodeCursor(cursor: string | undefined, query: readonly unknown[]): HistoryPosition | undefined {
  if (cursor === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw new InputError('Invalid request: cursor: must be the nextCursor of a previous page', 'cursor');
  }
  const p = parsed as { q?: unknown; p?: unknown };
  if (typeof p !== 'object' || p === null || typeof p.p !== 'object' || p.p === null) {
    throw new InputError('Invalid request: cursor: must be the nextCursor of a previous page', 'cursor');
  }
  if (p.q !== fingerprint(query)) {
    throw new InputError('Invalid request: cursor: belongs to another query (user, symbol or time range changed)', 'cursor');
  }
  return p.p as HistoryPosition;
}

function isoOf(ms: bigint): string | null {
  return ms >= 0n && ms <= 8_640_000_000_000_000n ? new Date(Number(ms)).toISOString() : null;
}

export function userTradeView(row: UserTrade, catalog: MarketCatalog): UserTradeView {
  const base = catalog.assets.get(row.baseAsset)?.decimals ?? 0;
  const quote = catalog.assets.get(row.quoteAsset)?.decimals ?? 0;
  const market = catalog.markets.get(row.symbol);
  const defaultDivisor = market !== undefined && market.quoteDivisor === 10n ** BigInt(base);
  return {
    ...row,
    settledAtIso: isoOf(row.settledAt),
    display: {
      price: defaultDivisor ? formatMinorUnits(row.price, quote) : row.price.toString(),
      quantity: formatMinorUnits(row.quantity, base),
      quoteAmount: formatMinorUnits(row.quoteAmount, quote),
    },
  };
}

export function userLedgerEventView(row: UserLedgerEvent, catalog: MarketCatalog): UserLedgerEventView {
  const asset = catalog.assets.get(row.currency);
  return {
    ...row,
    asset: asset?.code ?? `#${row.currency}`,
    createdAtIso: isoOf(row.createdAt),
    display: { amount: formatMinorUnits(row.amount, asset?.decimals ?? 0) },
  };
}

/** One page of a user's trades, newest first. `raw` holds the unvalidated query parameters. */
export async function userTradesPage(reader: UserHistoryReader, catalog: MarketCatalog, userId: bigint, raw: unknown, what: string): Promise<HistoryResponsePage<UserTradeView>> {
  const query: TradeHistoryQuery = parseInput(tradeHistoryQuerySchema(catalog), raw, what);
  const key = ['trades', userId, query.symbol ?? null, query.from ?? null, query.to ?? null];
  const page = await reader.tradesPage(userId, {
    symbol: query.symbol,
    fromMs: query.from,
    toMs: query.to,
    limit: query.limit ?? HISTORY_LIMIT_DEFAULT,
    position: decodeCursor(query.cursor, key),
  });
  return { items: page.items.map((r) => userTradeView(r, catalog)), nextCursor: page.next === undefined ? null : encodeCursor(page.next, key) };
}

/** One page of a user's funding events (deposits, withdrawals, locks, unlocks), newest first. */
export async function userLedgerPage(reader: UserHistoryReader, catalog: MarketCatalog, userId: bigint, raw: unknown, what: string): Promise<HistoryResponsePage<UserLedgerEventView>> {
  const query = parseInput(ledgerHistoryQuerySchema, raw, what);
  const key = ['ledger', userId];
  const page = await reader.ledgerPage(userId, { limit: query.limit ?? HISTORY_LIMIT_DEFAULT, position: decodeCursor(query.cursor, key) });
  return { items: page.items.map((r) => userLedgerEventView(r, catalog)), nextCursor: page.next === undefined ? null : encodeCursor(page.next, key) };
}
