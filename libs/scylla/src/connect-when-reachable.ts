/**
 * Start-up waits for Cassandra instead of exiting (p-retry, doubling delays): a worker (re)started while Cassandra
 * restarts would otherwise exit 1 and, under a supervisor, crash-loop until it is back. Only an
 * unreachable cluster (no host, client timeout, a socket closed by a node going down) is waited out; anything else, such as a missing
 * keyspace or a wrong data center, still fails the start at once. SIGTERM meanwhile ends the
 * process through runApp's shutdown.
 */
import cassandra from 'cassandra-driver';
import pRetry from 'p-retry';

/** How often the wait says so, ms. */
const WAITING_LOG_INTERVAL_MS = 5_000;

export interface ConnectWhenReachableOptions {
  /** First delay between attempts, ms (doubles up to retryMaxMs). Default 100. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs: number;
  readonly logger: { info(fields: object, message: string): void; warn(fields: object, message: string): void };
}

/** Why Cassandra is unreachable, or undefined for a failure that waiting does not fix. */
function unreachableKind(error: unknown): string | undefined {
  if (error instanceof cassandra.errors.NoHostAvailableError) return 'no_host';
  if (error instanceof cassandra.errors.OperationTimedOutError) return 'client_timeout';
  // A node that closed the connection mid-handshake (killed again while starting).
  if (error instanceof cassandra.errors.DriverError && (error as { isSocketError?: boolean }).isSocketError === true) return 'socket_closed';
  return undefined;
}

export async function connectWhenReachable(client: cassandra.Client, options: ConnectWhenReachableOptions): Promise<void> {
  await whenReachable('connect', () => client.connect(), options);
}

/**
 * Runs one start-up step that reads Cassandra (`what` names it in the log), again while the
 * cluster is unreachable: connected is not enough, a node killed during start-up fails the next
 * read (chaos run, 4 Dec: a settler SIGSTOPped mid-start woke to a Cassandra being killed, its
 * history-layout read failed, and it exited 1).
 */
export async function whenReachable<T>(what: string, step: () => Promise<T>, options: ConnectWhenReachableOptions): Promise<T> {
  let loggedAtMs = 0;
  let attempts = 0;
  const result = await pRetry(
    async () => {
      attempts += 1;
      return step();
    },
    {
      retries: Number.POSITIVE_INFINITY,
      minTimeout: options.retryInitialMs ?? 100,
      maxTimeout: options.retryMaxMs,
      factor: 2,
      shouldRetry: ({ error }) => unreachableKind(error) !== undefined,
      onFailedAttempt: ({ error, attemptNumber }) => {
        const kind = unreachableKind(error);
        if (kind === undefined || Date.now() - loggedAtMs < WAITING_LOG_INTERVAL_MS) return;
        loggedAtMs = Date.now();
        options.logger.warn({ err: error, kind, attempt: attemptNumber - 1, step: what }, 'waiting for Cassandra');
      },
    },
  );
  if (attempts > 1) options.logger.info({ attempts, step: what }, 'Cassandra reachable');
  return result;
}
