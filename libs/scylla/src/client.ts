import cassandra from 'cassandra-driver';

export interface ScyllaClientOptions {
  /** host or host:port; port defaults to 9042. */
  readonly hosts: readonly string[];
  readonly localDataCenter: string;
  /** Keyspace to use; omit to connect without one (migrations create it). */
  readonly keyspace?: string;
  /** Per-request read timeout, ms. */
  readonly requestTimeoutMs: number;
  readonly consistency: 'one' | 'local_one' | 'local_quorum' | 'quorum';
}

export const CONSISTENCY = {
  one: cassandra.types.consistencies.one,
  local_one: cassandra.types.consistencies.localOne,
  local_quorum: cassandra.types.consistencies.localQuorum,
  quorum: cassandra.types.consistencies.quorum,
} as const;

function splitHosts(hosts: readonly string[]): { contactPoints: string[]; port: number } {
  const ports = new Set<number>();
  const contactPoints = hosts.map((h) => {
    const [host, port] = h.split(':');
    ports.add(port === undefined ? 9042 : Number(port));
    return host!;
  });
  if (ports.size > 1) throw new Error(`all scylladb.hosts must use one port, got ${[...ports].join(', ')}`);
  return { contactPoints, port: [...ports][0] ?? 9042 };
}

/**
 * One long-lived client per process. The driver negotiates the protocol version down to what
 * the server speaks (v3 on Cassandra 2.1, v4 on ScyllaDB). bigint/varint map to JS bigint so
 * money never passes through a float.
 */
export function createScyllaClient(options: ScyllaClientOptions): cassandra.Client {
  const { contactPoints, port } = splitHosts(options.hosts);
  return guardControlConnection(new cassandra.Client({
    contactPoints,
    localDataCenter: options.localDataCenter,
    keyspace: options.keyspace,
    protocolOptions: { port },
    encoding: { useBigIntAsLong: true, useBigIntAsVarint: true },
    socketOptions: { readTimeout: options.requestTimeoutMs, connectTimeout: 5_000 },
    queryOptions: {
      consistency: CONSISTENCY[options.consistency],
      prepare: true,
    },
    pooling: { heartBeatInterval: 10_000 },
    // The driver's default waits up to 10 minutes between attempts to reach a node that went
    // away: a restarted Cassandra would sit unused that long. Retry within seconds instead.
    policies: { reconnection: new cassandra.policies.reconnection.ExponentialReconnectionPolicy(250, 5_000, false) },
  }));
}

interface ControlConnectionInternals {
  _refresh?: (...args: unknown[]) => Promise<void>;
  _isShuttingDown?: boolean;
  _reconnectionSchedule?: Iterator<number>;
  log?: (level: string, message: string, error?: unknown) => void;
}

/**
 * cassandra-driver 4.10 can throw inside its control connection's reconnection when a node
 * restarts: two refreshes run at once and null each other's connection, and the timer that
 * started the refresh has no catch (an unhandled rejection, which ends our processes; upstream
 * NODEJS-681, not released). A failed refresh is caught here and scheduled again, as the driver
 * does for the failures it expects. Only that method is wrapped; every other error stays fatal.
 */
function guardControlConnection(client: cassandra.Client): cassandra.Client {
  const control = (client as unknown as { controlConnection?: ControlConnectionInternals }).controlConnection;
  const refresh = control?._refresh;
  if (control === undefined || refresh === undefined) return client;
  const guarded = async (...args: unknown[]): Promise<void> => {
    try {
      await refresh.apply(control, args);
    } catch (error) {
      control.log?.('error', 'ControlConnection refresh failed; scheduling another', error);
      if (control._isShuttingDown === true) return;
      const delay = control._reconnectionSchedule?.next().value ?? 1_000;
      setTimeout(() => void guarded(), delay).unref();
    }
  };
  control._refresh = guarded;
  return client;
}

/** Options shaped like the `scylladb` section of the config. */
export function scyllaOptionsFromConfig(config: {
  scylladb: { hosts: readonly string[]; local_data_center: string; keyspace: string; request_timeout_ms: number; consistency: ScyllaClientOptions['consistency'] };
}): ScyllaClientOptions {
  return {
    hosts: config.scylladb.hosts,
    localDataCenter: config.scylladb.local_data_center,
    keyspace: config.scylladb.keyspace,
    requestTimeoutMs: config.scylladb.request_timeout_ms,
    consistency: config.scylladb.consistency,
  };
}

/** u64 values are stored in signed bigint columns as their two's complement. */
export function u64ToCql(value: bigint): bigint {
  return BigInt.asIntN(64, value);
}

export function u64FromCql(value: bigint): bigint {
  return BigInt.asUintN(64, value);
}
