/**
 * Whether this process may have lost sight of storage. Cassandra can come back from a crash
 * without the batches it acknowledged in its last seconds (periodic commit log), so a settler
 * trusts what it remembers of a shard's stored state only while nothing happened in between:
 * no request failed, and the driver saw no node go down or come back. Each such event bumps the
 * generation; state remembered under an older generation is read again before it is used.
 */
import type cassandra from 'cassandra-driver';

export class StorageWatch {
  private gen = 0;
  private readonly reconnectListeners = new Set<() => void>();

  /** Without a client (tests driving a ShardSettler directly), only errors bump it. */
  constructor(client?: cassandra.Client) {
    if (client === undefined) return;
    const bump = (): void => this.bump();
    client.on('hostDown', bump);
    client.on('hostRemove', bump);
    client.on('hostAdd', bump);
    client.on('hostUp', () => {
      this.bump();
      for (const listener of this.reconnectListeners) listener();
    });
  }

  get generation(): number {
    return this.gen;
  }

  /** A request failed or a node changed state: what was read before may be stale. */
  bump(): void {
    this.gen += 1;
  }

  /** Called when a node comes back (the settler then checks its idle shards, see settler.ts). */
  onReconnect(listener: () => void): void {
    this.reconnectListeners.add(listener);
  }
}
