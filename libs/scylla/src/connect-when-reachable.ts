/**
 * Start-up waits for Cassandra instead of exiting: a worker (re)started while Cassandra
 * restarts would otherwise exit 1 and, under a supervisor, crash-loop until it is back. Only an
 * unreachable cluster (no host, client timeout, a socket closed by a node going down) is waited out; anything else, such as a missing
 * keyspace or a wrong data center, still fails the start at once. SIGTERM meanwhile ends the
 * process through runApp's shutdown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import cassandra from 'cassandra-driver';

/** How often the wait says so, ms. */
const WAITING_LOG_INTERVAL_MS = 5_000;

export interface ConnectWhenReachableOptions {
  /** First delay between attempts, ms (doubles up to retryMaxMs). Default 100. */
  readonly retryInitialMs?: number;
  readonly retryMaxMs: number;
  readonly logger: { info(fields: object, message: string): void; warn(fields: object, message: string): void };
}

export async function connectWhenReachable(client: cassandra.Client, options: ConnectWhenReachableOptions): Promise<void> {
  const initialMs = options.retryInitialMs ?? 100;
  let loggedAtMs = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect();
      if (attempt > 0) options.logger.info({ attempts: attempt + 1 }, 'Cassandra reachable');
      return;
    } catch (error) {
      const kind =
        error instanceof cassandra.errors.NoHostAvailableError
          ? 'no_host'
          : error instanceof cassandra.errors.OperationTimedOutError
            ? 'client_timeout'
            : // A node that closed the connection mid-handshake (killed again while starting).
              error instanceof cassandra.errors.DriverError && (error as { isSocketError?: boolean }).isSocketError === true
              ? 'socket_closed'
              : undefined;
      if (kind === undefined) throw error;
      if (Date.now() - loggedAtMs >= WAITING_LOG_INTERVAL_MS) {
        loggedAtMs = Date.now();
        options.logger.warn({ err: error, kind, attempt }, 'waiting for Cassandra');
      }
      await sleep(Math.min(options.retryMaxMs, initialMs * 2 ** Math.min(attempt, 16)));
    }
  }
}
