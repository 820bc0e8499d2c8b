/**
 * Full scans of a table in token order, one driver page at a time, for exports and backfills:
 * memory holds one page; each page comes with the driver's paging state, so a scan stopped after
 * any page resumes after it (the state is valid for the same query text and parameters), and with
 * the token of its last partition, from which a caller can tell how far round the ring it is.
 */
import type cassandra from 'cassandra-driver';
import { TOKEN_MAX, TOKEN_MIN } from './reconciliation.js';

export interface ScanPage {
  readonly rows: cassandra.types.Row[];
  /** Resume after this page; undefined after the last page. */
  readonly pageState: string | undefined;
  /** token() of the last row's partition (selected as column `t`), if the page has rows. */
  readonly lastToken: bigint | undefined;
}

export interface ScanOptions {
  /** Rows per page. */
  readonly fetchSize: number;
  /** From a previous page, to resume after it. */
  readonly pageState?: string | undefined;
  readonly consistency?: number | undefined;
}

/** The query must select `token(<partition key>) AS t` for progress. */
export async function* scanTable(client: cassandra.Client, query: string, params: readonly unknown[], options: ScanOptions): AsyncGenerator<ScanPage> {
  let pageState = options.pageState;
  for (;;) {
    const result = await client.execute(query, [...params], {
      prepare: true,
      isIdempotent: true,
      fetchSize: options.fetchSize,
      pageState,
      ...(options.consistency === undefined ? {} : { consistency: options.consistency }),
    });
    pageState = result.pageState ?? undefined;
    const last = result.rows.at(-1);
    yield { rows: result.rows, pageState, lastToken: last === undefined ? undefined : (last['t'] as bigint) };
    if (pageState === undefined) return;
  }
}

/** How far round the ring a scan is that has just passed `token`, 0-100. */
export function ringPercent(token: bigint | undefined): number | undefined {
  if (token === undefined) return undefined;
  return Number(((token - TOKEN_MIN) * 10_000n) / (TOKEN_MAX - TOKEN_MIN)) / 100;
}
