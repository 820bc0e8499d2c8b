import type cassandra from 'cassandra-driver';

/** Every row of a query, page by page (the end checks read whole tables). */
export async function allRows(client: cassandra.Client, query: string, params: unknown[]): Promise<cassandra.types.Row[]> {
  const rows: cassandra.types.Row[] = [];
  let pageState: string | undefined;
  do {
    const page = await client.execute(query, params, { prepare: true, fetchSize: 5000, pageState });
    rows.push(...page.rows);
    pageState = page.pageState ?? undefined;
  } while (pageState);
  return rows;
}
