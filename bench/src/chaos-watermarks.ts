/**
 * Each shard's stored watermark (last_seq) as the chaos harness sees it: read right before and
 * right after a Cassandra fault, it shows whether storage went back; on a ring, sampled for the
 * settled rate.
 */
import type cassandra from 'cassandra-driver';
import type { SettlementConfig } from '@settlement/config';
import { createScyllaClient, scyllaOptionsFromConfig } from '@settlement/scylla';
import { sleep, within } from './chaos-wait.js';

/** The harness's own Cassandra connection for the watermarks, apart from the processes' ones. */
export class WatermarkProbe {
  private readonly client: cassandra.Client;

  constructor(config: Readonly<SettlementConfig>) {
    this.client = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
    // Cassandra is down on purpose during the faults: the driver's complaints are expected.
    this.client.on('log', () => undefined);
  }

  /** Each shard's stored watermark, or undefined when Cassandra does not answer within `ms`. */
  async read(ms: number): Promise<Map<string, bigint> | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const rows = await within(
        this.client.execute('SELECT shard, last_seq FROM chaos.shard_watermarks', [], { prepare: true }).then((r) => r.rows),
        Math.max(1, Math.min(2000, deadline - Date.now())),
        undefined,
      );
      if (rows !== undefined) return new Map(rows.map((r) => [r['shard'] as string, r['last_seq'] as bigint]));
      if (Date.now() >= deadline) return undefined;
      await sleep(200);
    }
  }

  shutdown(): Promise<void> {
    return this.client.shutdown();
  }
}

/** "btc_usdt 1200→1150 (−50), …": each shard's stored watermark before and after a Cassandra fault. */
export function describeWatermarks(before: Map<string, bigint> | undefined, after: Map<string, bigint> | undefined): string {
  if (before === undefined || after === undefined) return `watermarks ${before === undefined ? 'not read before' : 'read before'}, ${after === undefined ? 'not read after' : 'read after'}`;
  const shards = [...new Set([...before.keys(), ...after.keys()])].sort();
  // Nothing stored yet (or everything lost by an earlier fault and not written again since).
  if (shards.length === 0) return 'no shard watermark stored before or after';
  const back = shards.filter((s) => (after.get(s) ?? 0n) < (before.get(s) ?? 0n));
  const parts = shards.map((s) => {
    const b = before.get(s) ?? 0n;
    const a = after.get(s) ?? 0n;
    return `${s} ${b}→${a}${a < b ? ` (−${b - a})` : ''}`;
  });
  return `${back.length === 0 ? 'storage kept every watermark' : `storage went back on ${back.join(', ')}`}: ${parts.join(', ')}`;
}
