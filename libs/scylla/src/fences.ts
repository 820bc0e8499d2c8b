/**
 * The shard fence row: the fencing epoch of the shard's current owner (see
 * libs/domain/src/fencing.ts). Taken with a lightweight transaction (Paxos, SERIAL), so two
 * settlers taking the same shard over at once never get the same epoch.
 */
import cassandra from 'cassandra-driver';

const { consistencies } = cassandra.types;

/** Attempts before giving up when other settlers keep taking the fence at the same time. */
const TAKE_ATTEMPTS_MAX = 20;

export class FenceRepository {
  private readonly readCql: string;
  private readonly insertCql: string;
  private readonly updateCql: string;

  constructor(
    private readonly client: cassandra.Client,
    keyspace: string,
    /** Consistency of the commit round: the keyspace's write consistency. */
    private readonly consistency: number,
  ) {
    this.readCql = `SELECT epoch FROM ${keyspace}.shard_fences WHERE shard = ?`;
    this.insertCql = `INSERT INTO ${keyspace}.shard_fences (shard, epoch, owner, taken_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`;
    this.updateCql = `UPDATE ${keyspace}.shard_fences SET epoch = ?, owner = ?, taken_at = ? WHERE shard = ? IF epoch = ?`;
  }

  /** The shard's current epoch, read through Paxos (SERIAL): undefined before the first take-over. */
  async current(shard: string): Promise<bigint | undefined> {
    const result = await this.client.execute(this.readCql, [shard], { prepare: true, isIdempotent: true, consistency: consistencies.serial });
    const row = result.first();
    return row === null ? undefined : ((row['epoch'] as bigint | null) ?? undefined);
  }

  /**
   * Takes the next epoch of the shard: `propose(current)` says which (above the current one),
   * and the compare-and-set retries while another settler takes it in between.
   */
  async take(shard: string, owner: string, propose: (current: bigint | undefined) => bigint): Promise<bigint> {
    for (let attempt = 0; attempt < TAKE_ATTEMPTS_MAX; attempt++) {
      const current = await this.current(shard);
      const epoch = propose(current);
      if (current !== undefined && epoch <= current) throw new Error(`fence of shard ${shard}: proposed epoch ${epoch} is not above ${current}`);
      const options = { prepare: true, consistency: this.consistency, serialConsistency: consistencies.serial, isIdempotent: false };
      const result =
        current === undefined
          ? await this.client.execute(this.insertCql, [shard, epoch, owner, new Date()], options)
          : await this.client.execute(this.updateCql, [epoch, owner, new Date(), shard, current], options);
      if (result.first()?.['[applied]'] === true) return epoch;
    }
    throw new Error(`fence of shard ${shard}: not taken after ${TAKE_ATTEMPTS_MAX} attempts (other settlers took it each time)`);
  }
}
