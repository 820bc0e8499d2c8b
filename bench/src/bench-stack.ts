/** Where the bench writes: the local stack or a private ring, and the keyspaces it measures on. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type cassandra from 'cassandra-driver';
import type { SettlementConfig } from '@settlement/config';
import { SettlementWriter, createScyllaClient, migrate, scyllaOptionsFromConfig } from '@settlement/scylla';
import { ROOT, type LocalRing } from '@settlement/tools';
import { say } from './bench-log.js';
import type { BenchOptions } from './bench-options.js';
import { benchRingDir, startRing } from './chaos-ring.js';

/** Starts the local stack, or with --nodes 3 a private three-node ring (returned); both idempotent. */
export async function startStack(options: BenchOptions): Promise<LocalRing | undefined> {
  if (options.nodeCount === 3) {
    say(`starting a private three-node ring on port ${options.ringPort} in ${path.relative(ROOT, benchRingDir(options.ringPort))} (idempotent)`);
    return startRing(benchRingDir(options.ringPort), options.ringPort, say);
  }
  say('starting the local stack (idempotent)');
  const stack = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'tools/stack/main.ts'), 'up'], { cwd: ROOT, stdio: 'inherit' });
  if (stack.status !== 0) throw new Error('the local stack did not start');
  return undefined;
}

/** A raw keyspace and a writer on it; `drop` removes both. */
export interface RawKeyspace {
  readonly client: cassandra.Client;
  readonly writer: SettlementWriter;
  drop(): Promise<void>;
}

/** Creates the bench's keyspaces (every migration applied) through one admin connection. */
export class BenchKeyspaces {
  private readonly admin: cassandra.Client;
  private rawKeyspaces = 0;

  constructor(
    private readonly config: Readonly<SettlementConfig>,
    private readonly rawConfig: Readonly<SettlementConfig>,
    private readonly ring: LocalRing | undefined,
  ) {
    this.admin = createScyllaClient({ ...scyllaOptionsFromConfig(config), keyspace: undefined });
  }

  /** Drops `keyspace` if it exists. */
  async drop(keyspace: string): Promise<void> {
    await this.admin.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
  }

  /** Drops `keyspace` if it exists and creates it afresh. */
  async create(keyspace: string): Promise<void> {
    await this.drop(keyspace);
    await migrate(this.admin, { schemaDir: path.join(ROOT, 'schema'), keyspace, replicationFactor: this.ring?.replicationFactor ?? 1, symbols: this.config.symbols.map((s) => s.name) });
  }

  /**
   * A fresh raw keyspace and a writer on it. Each gets a name of its own: Cassandra 2.1 keeps a
   * statement prepared on a dropped table, so the admin client's migration insert into a
   * re-created keyspace of the same name went to the dropped table (on a ring, a write timeout
   * every time).
   */
  async openRaw(): Promise<RawKeyspace> {
    const keyspace = `bench_raw_${++this.rawKeyspaces}`;
    await this.create(keyspace);
    const rawConfig = this.rawConfig;
    const client = createScyllaClient({ ...scyllaOptionsFromConfig(rawConfig), keyspace });
    await client.connect();
    const writer = new SettlementWriter({ client, keyspace, symbols: rawConfig.symbols.map((s) => s.name), consistency: rawConfig.scylladb.consistency, feeAccountUserId: rawConfig.fee_account_user_id });
    return {
      client,
      writer,
      // Dropped when done: Cassandra stops compacting rows nobody reads, and whatever is measured
      // next runs on a machine as quiet as the raw path did.
      drop: async () => {
        await client.execute(`DROP KEYSPACE IF EXISTS ${keyspace}`);
        await client.shutdown();
      },
    };
  }

  /** Closes the admin connection: after the last keyspace is made. */
  async close(): Promise<void> {
    await this.admin.shutdown();
  }
}
