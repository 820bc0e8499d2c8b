/**
 * Start-up warnings that name a durability risk of the deployment, so an operator sees it in
 * the first log lines rather than after a crash. The service stays correct in both cases as far
 * as README "Guarantees" says; these are the settings under which a loss needs the engine's
 * replay, or cannot be recovered at all.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Replication } from '@settlement/scylla';

export async function warnAboutDurability(options: { redis: Redis; replication: Replication; keyspace: string; logger: Logger }): Promise<void> {
  const { redis, replication, keyspace, logger } = options;
  if (replication.totalReplicas <= 1) {
    logger.warn(
      { keyspace, replicationFactor: replication.totalReplicas },
      'keyspace has a single replica: a lost disk loses settled trades for good, and a crashed node with a periodic commit log comes back without its last acknowledged batches (re-applied from the retained jobs, see README "Guarantees")',
    );
  }
  try {
    const [, appendonly] = (await redis.config('GET', 'appendonly')) as [string, string];
    const [, save] = (await redis.config('GET', 'save')) as [string, string];
    if (appendonly !== 'yes' && (save ?? '').trim() === '') {
      logger.warn(
        { appendonly, save },
        'Redis keeps nothing on disk: a Redis restart empties every queue and position; settlement then waits for the engine to replay what was not settled (zmq.replay_endpoint), see README "Guarantees"',
      );
    }
  } catch (error) {
    // Managed Redis services often refuse CONFIG: nothing to say then.
    logger.debug({ err: error }, 'could not read the Redis persistence settings');
  }
}
