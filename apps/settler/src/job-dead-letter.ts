/**
 * A job that cannot be applied at all (unreadable, for another shard, of an unknown kind, or a
 * correction that would overflow) is kept whole in dead_letters, as its raw JSON with the
 * reason, and the shard goes on: nothing is dropped silently.
 */
import type cassandra from 'cassandra-driver';
import type { Logger } from 'pino';
import type { DeadLetterRepository, SettlementWriter } from '@settlement/scylla';
import type { SettlerMetrics } from './metrics.js';

export interface JobDeadLetterDeps {
  readonly shard: string;
  readonly client: cassandra.Client;
  readonly writer: SettlementWriter;
  readonly deadLetters: DeadLetterRepository;
  readonly metrics: SettlerMetrics;
  readonly logger: Logger;
}

export type WholeJobDeadLettered = { readonly deadLettered: 'job'; readonly reason: string };

/** Writes the dead letter through `cassandra` (the settler's error handling) and logs it. */
export async function deadLetterWholeJob(
  deps: JobDeadLetterDeps,
  cassandraOp: <T>(op: string, fn: () => Promise<T>, fields: Record<string, unknown>) => Promise<T>,
  letter: { readonly jobId: string; readonly reason: string; readonly field: string | undefined; readonly raw: string; readonly code: string },
): Promise<WholeJobDeadLettered> {
  const { jobId, reason, field, raw, code } = letter;
  // Built once, so a retry after an ambiguous timeout rewrites the same row.
  const statement = deps.deadLetters.insertStatement({ shard: deps.shard, source: 'settler', reason, field, seq: undefined, jobId, raw });
  await cassandraOp('dead_letter', () => deps.client.execute(statement.query, statement.params, { prepare: true, isIdempotent: true, consistency: deps.writer.consistency }), { jobId });
  deps.metrics.deadLetters.inc({ shard: deps.shard, code });
  deps.logger.error({ shard: deps.shard, jobId, field, reason, code }, 'job dead-lettered whole');
  return { deadLettered: 'job', reason };
}

/** The job's data as JSON (bigints as decimal strings), or its string form if it has none. */
export function jobDataJson(value: unknown): string {
  try {
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) ?? String(value);
  } catch {
    return String(value);
  }
}
