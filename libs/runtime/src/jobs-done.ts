/**
 * The settlers' notice to the ingestor that a shard's job is done (libs/domain jobsDoneChannel).
 * The ingestor holds a shard's next partial job while the shard's settler is busy and cuts it
 * when the settler is free; without the notice it learns that only by polling the queue's wait
 * and active lists, every few milliseconds for as long as the settler is busy (under load ~150
 * polls of 8 LLEN a second, more than every other command of the service). A notice that is lost
 * (Redis reconnecting) only delays the cut until the next poll.
 */
import type { Redis } from 'ioredis';
import { jobsDoneChannel } from '@settlement/domain';

/** What publishes: a BullMQ Worker emits 'completed' and 'failed' once the job has left its active list. */
interface JobEvents {
  on(event: 'completed' | 'failed', listener: () => void): unknown;
}

/** Publishes `shard` on the channel each time `worker` has finished one of its jobs. */
export function announceJobsDone(worker: JobEvents, redis: Redis, prefix: string, shard: string): void {
  const channel = jobsDoneChannel(prefix);
  const publish = (): void => {
    // Fire and forget: the ingestor's poll covers a notice that did not arrive.
    redis.publish(channel, shard).catch(() => undefined);
  };
  worker.on('completed', publish);
  worker.on('failed', publish);
}

/**
 * Calls `onDone(shard)` for each notice, on a connection of its own (a subscribed connection
 * takes no other commands). Returns the function that unsubscribes and closes it.
 */
export function listenJobsDone(redis: Redis, prefix: string, onDone: (shard: string) => void): () => void {
  // Queued until connected and subscribed again after each reconnection (ioredis), whatever the
  // options of the connection it copies (the ingestor's fails fast).
  const subscriber = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
  subscriber.on('error', () => undefined);
  subscriber.on('message', (_channel: string, shard: string) => onDone(shard));
  subscriber.subscribe(jobsDoneChannel(prefix)).catch(() => undefined);
  return () => subscriber.disconnect();
}
