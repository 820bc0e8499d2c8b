/**
 * Unnumbered funding events (sequence_id 0) read from two sockets (issue 18.3): each copy would
 * get a number of its own and be applied twice, so a configuration that reads the funding stream
 * from zmq.settlement_port and zmq.pub_endpoint must say the engine numbers funding events; the
 * ingestor refuses any other at start-up with one line naming the key.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '@settlement/config';
import { testConfig } from '@settlement/testing';
import { freePort, startIngestorProcess } from './helpers.js';

const EXPECTED =
  'Invalid config: funding_numbering: must be numbered when zmq.pub_endpoint is set (got auto): the ingestor then reads zmq.settlement_port and zmq.pub_endpoint, ' +
  'and an unnumbered funding event (sequence_id 0) received on both cannot be told from two events; read one socket, or have the engine number funding events';

describe('funding_numbering', () => {
  it('is refused unless numbered when the funding stream is read from two sockets', () => {
    const base = JSON.parse(JSON.stringify(testConfig(), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as Record<string, Record<string, unknown>>;
    const withPub = { ...base, zmq: { ...base['zmq'], pub_endpoint: 'tcp://127.0.0.1:5556' } };
    expect(() => parseConfig(withPub)).toThrow(EXPECTED);
    expect(() => parseConfig({ ...withPub, funding_numbering: 'unnumbered' })).toThrow(/funding_numbering: must be numbered when zmq.pub_endpoint is set \(got unnumbered\)/);
    expect(parseConfig({ ...withPub, funding_numbering: 'numbered' }).funding_numbering).toBe('numbered');
    expect(parseConfig(base).funding_numbering).toBe('auto');
    expect(() => parseConfig({ ...base, funding_numbering: 'sometimes' })).toThrow(/^Invalid config: funding_numbering: /);
  });

  it('stops the ingestor at start-up with that one line and exit code 1', { timeout: 30_000 }, async () => {
    const config = testConfig({ zmq: { settlement_port: await freePort() } });
    // Written as YAML like a user's file; the schema is parsed again by the process.
    const ingestor = startIngestorProcess({ ...config, zmq: { ...config.zmq, pub_endpoint: `tcp://127.0.0.1:${await freePort()}` } }, 'ingestor-two-sockets');
    const exit = await ingestor.exited;
    expect(exit.code).toBe(1);
    const output = [...ingestor.logs.map((l) => l.msg), ...ingestor.stderr].join('\n');
    expect(output).toContain(EXPECTED);
  });
});
