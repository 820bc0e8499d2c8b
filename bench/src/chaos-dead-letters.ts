/**
 * The chaos run's dead-letter checks: every malformed message kept with a reason naming the
 * right field, and nothing valid kept. A malformed message can be kept in three places: the
 * dead_letters table, the failed-trades file (where the ingestor puts what Cassandra did not
 * take), the dead-letters file (the ingestor's own copy of each) or the dead-letter queue.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Queue } from 'bullmq';
import type cassandra from 'cassandra-driver';
import type { SettlementConfig } from '@settlement/config';
import type { MarketCatalog } from '@settlement/domain';
import { UNROUTED_SHARD } from '@settlement/scylla';
import type { ExpectedResult } from '@settlement/simulator';
import { allRows } from './chaos-rows.js';
import type { ChaosCheck, FaultRecord } from './chaos-types.js';

/** Where a dead letter is kept and the field its reason names. */
interface KeptLetter {
  readonly where: string;
  readonly field: string | null;
}

export interface DeadLetterCheckInput {
  readonly client: cassandra.Client;
  readonly config: Readonly<SettlementConfig>;
  readonly catalog: MarketCatalog;
  readonly deadLetterQueue: Queue;
  readonly expected: ExpectedResult;
  /** The faults done: a lost letter is explained by the ingestor kill nearest to its send. */
  readonly faults: readonly FaultRecord[];
  /** Send time of each malformed frame, ms since the stream started. */
  readonly malformedSentAtMs: ReadonlyMap<string, number>;
}

/** raw → where it is kept, from the table first, then the file, then the queue. */
async function keptDeadLetters(input: DeadLetterCheckInput): Promise<Map<string, KeptLetter>> {
  const { client, config, catalog, deadLetterQueue } = input;
  const kept = new Map<string, KeptLetter>();
  for (const shard of [UNROUTED_SHARD, ...catalog.shards]) {
    for (const row of await allRows(client, 'SELECT raw, reason, field FROM chaos.dead_letters WHERE shard = ?', [shard])) {
      kept.set(row['raw'] as string, { where: `dead_letters ${shard}: ${row['reason'] as string}`, field: (row['field'] as string | null) ?? null });
    }
  }
  for (const [file, label] of [
    [config.backup.failed_trades_file, 'failed-trades file'],
    [config.backup.dead_letters_file, 'dead-letters file'],
  ] as const) {
    const filePath = path.join(config.data_dir, file);
    if (!existsSync(filePath)) continue;
    for (const line of readFileSync(filePath, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const entry = JSON.parse(line) as { kind?: string; raw?: unknown; reason?: unknown; field?: unknown };
        if (entry.kind === 'dead_letter' && typeof entry.raw === 'string' && !kept.has(entry.raw)) {
          kept.set(entry.raw, { where: `${label}: ${String(entry.reason)}`, field: typeof entry.field === 'string' ? entry.field : null });
        }
      } catch {
        // A torn last line after a kill: its message is also in the table or the queue.
      }
    }
  }
  for (const job of await deadLetterQueue.getJobs(['waiting', 'active', 'completed', 'failed', 'delayed', 'paused', 'prioritized'])) {
    const data = job.data as { raw?: unknown; reason?: unknown; field?: unknown } | undefined;
    if (typeof data?.raw === 'string' && !kept.has(data.raw)) {
      kept.set(data.raw, { where: `dead-letter queue: ${String(data.reason)}`, field: typeof data.field === 'string' ? data.field : null });
    }
  }
  return kept;
}

/** "every malformed message dead-lettered" and "nothing valid dead-lettered", in that order. */
export async function deadLetterChecks(input: DeadLetterCheckInput): Promise<ChaosCheck[]> {
  const { expected, faults, malformedSentAtMs } = input;
  const kept = await keptDeadLetters(input);
  // A frame that is not valid UTF-8 is kept as "base64:" + its bytes (the ingestor's rule).
  const malformedRaw = new Set(expected.malformed.flatMap((m) => [m.raw, `base64:${Buffer.from(m.raw).toString('base64')}`]));
  const lost: string[] = [];
  const misnamed: string[] = [];
  const ingestorKillsMs = faults.filter((f) => f.kind === 'kill-ingestor').map((f) => f.atMs);
  for (const m of expected.malformed) {
    const entry = kept.get(m.raw) ?? kept.get(`base64:${Buffer.from(m.raw).toString('base64')}`);
    if (entry === undefined) {
      // The ingestor kill nearest to its send time, if any was close: the likely cause.
      const sentMs = malformedSentAtMs.get(m.raw);
      const killMs = sentMs === undefined ? undefined : [...ingestorKillsMs].sort((x, y) => Math.abs(x - sentMs) - Math.abs(y - sentMs))[0];
      const near = sentMs !== undefined && killMs !== undefined && Math.abs(killMs - sentMs) < 5_000 ? `, ingestor SIGKILLed at ${(killMs / 1000).toFixed(2)} s` : '';
      lost.push(`${m.kind} (${sentMs === undefined ? 'never sent' : `sent at ${(sentMs / 1000).toFixed(2)} s${near}`})`);
    } else if (entry.field !== m.field) misnamed.push(`${m.kind}: field ${entry.field}, expected ${m.field}`);
  }
  // Duplicates are resent bytes with the same sequence: replays, never dead letters.
  const wronglyKept = [...kept].filter(([raw]) => !malformedRaw.has(raw));
  return [
    {
      name: 'every malformed message dead-lettered',
      ok: lost.length === 0 && misnamed.length === 0,
      detail: `${expected.malformed.length - lost.length}/${expected.malformed.length} kept, naming the field${lost.length ? `; missing: ${lost.join('; ')}` : ''}${misnamed.length ? `; wrong field: ${misnamed.slice(0, 3).join('; ')}` : ''}`,
    },
    {
      name: 'nothing valid dead-lettered',
      ok: wronglyKept.length === 0,
      detail: wronglyKept.length === 0 ? `${kept.size} dead letters, all malformed` : `${wronglyKept.length} valid messages dead-lettered: ${wronglyKept.slice(0, 3).map(([raw, k]) => `${k.where} (${raw.slice(0, 80)})`).join('; ')}`,
    },
  ];
}
