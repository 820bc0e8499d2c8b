/**
 * Another settler wrote the shard between this settler's read of the shard state and the moment
 * it took its fencing epoch. The job is planned again from the state as stored now.
 */
export class ShardMovedError extends Error {
  override readonly name = 'ShardMovedError';

  constructor(
    readonly shard: string,
    readonly jobId: string,
  ) {
    super(`shard ${shard} moved on while this settler took its fencing epoch for job ${jobId}: planning the job again`);
  }
}
