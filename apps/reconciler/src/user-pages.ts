/**
 * The users a run checks, one page at a time: in full mode every user in token order, else a
 * random sample or the given users, cut into pages of reconciliation.page_size.
 */
import { randomBytes } from 'node:crypto';
import { TOKEN_MAX, TOKEN_MIN } from '@settlement/scylla';
import type { ResolvedRequest } from './changed-run.js';
import type { ReconcileDeps } from './run-deps.js';

/** 2^64: the width of the token ring, for progress. */
const RING = 2n ** 64n;

export interface UserPage {
  readonly users: bigint[];
  /** Share of the run done after this page, 0-100. */
  readonly percentAfter: number;
}

export function cryptoRandomToken(): bigint {
  return randomBytes(8).readBigInt64BE();
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export async function* userPages(deps: ReconcileDeps, request: ResolvedRequest, randomToken: () => bigint): AsyncGenerator<UserPage> {
  const r = deps.config.reconciliation;
  if (request.mode === 'full') {
    // Token order over user_balances: each page continues after the last token of the one
    // before, so only one page of ids is held, and a page short of page_size is the last.
    // Users with history in the same token range but no balance row at all join the page.
    let after = TOKEN_MIN;
    for (;;) {
      const page = await deps.reader.usersAfterToken(after, r.page_size);
      const last = page.length < r.page_size;
      const upTo = last ? TOKEN_MAX : page[page.length - 1]!.token;
      const users = new Set(page.map((u) => u.userId));
      for (const userId of await deps.reader.historyUsersInRange(after, upTo, r.page_size)) users.add(userId);
      after = upTo;
      yield { users: [...users], percentAfter: last ? 100 : Number(((after - TOKEN_MIN) * 1000n) / RING) / 10 };
      if (last) return;
    }
  }
  const users =
    request.mode === 'users'
      ? [...new Set(request.userIds)]
      : await deps.reader.sampleUsers(request.size ?? r.sample_size, r.sample_ranges, randomToken);
  const pages = chunk(users, r.page_size);
  for (let i = 0; i < pages.length; i += 1) yield { users: pages[i]!, percentAfter: ((i + 1) * 100) / pages.length };
}
