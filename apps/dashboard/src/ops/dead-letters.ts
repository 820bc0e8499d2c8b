/**
 * Dead letters: listing them across shards, and replaying them into the ingestor.
 *
 * A replay sends each kept message, exactly as it was received, to the ingestor's ZeroMQ PULL
 * endpoint, the way the matching engine sends it. It is then validated, sequenced and
 * de-duplicated again like any message, so a replay can never apply anything twice or out of
 * order: a message rejected for a reason since fixed (an asset or symbol added to config) is
 * settled; one still invalid is dead-lettered again; one whose engine sequence the shard has
 * already passed is counted by the ingestor as a duplicate. The original row stays: the
 * dead-letter table is an audit log. A letter's id is derived from the letter, so one still
 * invalid overwrites its own row (the list shows one row per distinct letter, with the time
 * it was last rejected).
 */
import { Push } from 'zeromq';
import type { DeadLetterRepository, StoredDeadLetter } from '@settlement/scylla';
import { UNROUTED_SHARD, newestDeadLetterFirst } from '@settlement/scylla';

export async function listDeadLetters(repo: DeadLetterRepository, shards: readonly string[], limit: number): Promise<StoredDeadLetter[]> {
  const perShard = await Promise.all(shards.map((shard) => repo.list(shard, limit)));
  return perShard
    .flat()
    .sort(newestDeadLetterFirst)
    .slice(0, limit);
}

/** Shards that can hold dead letters: every configured shard plus "unrouted". */
export function deadLetterShards(shards: readonly string[]): string[] {
  return [...shards, UNROUTED_SHARD];
}

/** Where the ingestor listens, seen from this machine. */
export function ingestorEndpoint(zmq: { bind_host: string; settlement_port: number }): string {
  const host = zmq.bind_host === '0.0.0.0' || zmq.bind_host === '*' ? '127.0.0.1' : zmq.bind_host;
  return `tcp://${host}:${zmq.settlement_port}`;
}

export interface ReplayOptions {
  readonly endpoint: string;
  /** How long one send may wait for the ingestor to take the message, ms. Default 5 000. */
  readonly sendTimeoutMs?: number;
}

/** Sends each letter's raw message; resolves with how many were handed to ZeroMQ. */
export async function replayDeadLetters(letters: readonly StoredDeadLetter[], options: ReplayOptions): Promise<number> {
  const sendTimeoutMs = options.sendTimeoutMs ?? 5_000;
  const socket = new Push({ linger: sendTimeoutMs, sendTimeout: sendTimeoutMs });
  // Sent only once connected: a message queued before the connection exists can still be in
  // ZeroMQ's queue when the CLI exits right after (seen on a loaded machine: "sent", never received).
  let timer: NodeJS.Timeout | undefined;
  const connected = new Promise<boolean>((resolve) => {
    socket.events.on('connect', () => resolve(true));
    timer = setTimeout(() => resolve(false), sendTimeoutMs);
  });
  socket.connect(options.endpoint);
  let sent = 0;
  try {
    const reached = await connected;
    clearTimeout(timer);
    if (!reached) throw new Error(`the ingestor at ${options.endpoint} did not accept a connection within ${sendTimeoutMs} ms; nothing sent`);
    for (const letter of letters) {
      try {
        await socket.send(letter.raw);
      } catch (error) {
        throw new Error(`the ingestor at ${options.endpoint} did not take dead letter ${letter.id} within ${sendTimeoutMs} ms (${(error as Error).message}); ${sent} sent before it`);
      }
      sent += 1;
    }
  } finally {
    // linger lets ZeroMQ flush what it accepted before the socket goes.
    socket.close();
  }
  return sent;
}
