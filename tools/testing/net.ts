/** Network helpers for integration tests: free ports and a TCP proxy that "brings a host back". */
import net from 'node:net';
import { parseConfig, type SettlementConfig } from '@settlement/config';

/** A port nobody listens on (yet). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Forwards local ports to a target: opened on a port an app was given while nothing listened
 * there, the app's host "comes back". close() drops every forwarded connection.
 */
export class TcpProxy {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();

  async open(port: number, target: { host: string; port: number }): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(target.port, target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
      }
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    this.servers.push(server);
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** The config pointed at another Cassandra host:port (and optionally another keyspace). */
export function withCassandraHost(config: Readonly<SettlementConfig>, host: string, keyspace = config.scylladb.keyspace): Readonly<SettlementConfig> {
  const raw = JSON.parse(JSON.stringify(config, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
  raw['scylladb'] = { ...raw['scylladb'], hosts: [host], keyspace };
  return parseConfig(raw);
}
