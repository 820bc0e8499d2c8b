/**
 * The simulator CLI end to end over real ZMQ sockets: it pushes the whole stream (valid,
 * duplicated, malformed) to a PULL socket, writes the expected result, serves its replay
 * endpoint, and rejects a bad flag naming it.
 */
import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Pull, Request } from 'zeromq';
import { MarketCatalog, parseWireMessage } from '@settlement/domain';
import { loadConfig } from '@settlement/config';
import { ROOT, freePort } from '@settlement/testing';
import type { ExpectedResult } from '../src/index.js';

const MAIN = path.join('apps', 'simulator', 'src', 'main.ts');

describe('simulator CLI', () => {
  it('sends the stream, writes the expected result and serves replay requests', { timeout: 60_000 }, async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sim-'));
    const [pullPort, replayPort] = [await freePort(), await freePort()];
    const pull = new Pull();
    await pull.bind(`tcp://127.0.0.1:${pullPort}`);
    const expectedFile = path.join(dir, 'expected.json');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', MAIN, '--messages', '3000', '--users', '50', '--rate', '3000', '--seed', '9', '--mode', 'push',
        '--endpoint', `tcp://127.0.0.1:${pullPort}`, '--expected-out', expectedFile, '--dup-rate', '0.01', '--malformed-rate', '0.005',
        '--reorder-rate', '0.01', '--replay-bind', `tcp://127.0.0.1:${replayPort}`, '--journal-file', path.join(dir, 'journal.jsonl')],
      { cwd: ROOT, env: { ...process.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    const config = loadConfig({ cwd: ROOT, env: {} });
    const catalog = new MarketCatalog(config);
    const received: string[] = [];
    let expected: ExpectedResult | undefined;
    for (;;) {
      const [frame] = await pull.receive();
      received.push(frame!.toString('utf8'));
      expected ??= JSON.parse(readFileSync(expectedFile, 'utf8')) as ExpectedResult;
      if (received.length === 3000 + expected.counts.duplicatesInjected + expected.counts.malformedInjected) break;
    }
    pull.close();
    expect(expected!.messages).toBe(3000);
    const valid = received.map((r) => parseWireMessage(r, catalog)).filter((p) => p.ok);
    expect(valid).toHaveLength(3000 + expected!.counts.duplicatesInjected);
    expect(received.filter((r) => expected!.malformed.some((m) => m.raw === r))).toHaveLength(expected!.counts.malformedInjected);
    // settled_at is the send time.
    const first = valid.find((p) => p.ok && p.message.kind === 'trade');
    expect(first?.ok && first.message.kind === 'trade' && Math.abs(Number(first.message.settledAt) - Date.now()) < 60_000).toBe(true);

    // The replay endpoint answers with journaled messages from a sequence on, one per frame.
    const req = new Request({ receiveTimeout: 5_000 });
    req.connect(`tcp://127.0.0.1:${replayPort}`);
    await req.send(JSON.stringify({ shard: 'global', from_sequence: 10, limit: 5 }));
    const frames = await req.receive();
    expect(frames.map((f) => /"output_sequence":(\d+)/.exec(f.toString())![1])).toEqual(['10', '11', '12', '13', '14']);
    await req.send('{"shard":"global","from_sequence":-1,"limit":5}');
    expect((await req.receive()).map((f) => f.length)).toEqual([0]);
    req.close();

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const journal = readFileSync(path.join(dir, 'journal.jsonl'), 'utf8').trim().split('\n');
    expect(journal).toHaveLength(3000);
  });

  it('stops with a message naming a bad flag', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', MAIN, '--dup-rate', '2', '--mode', 'carrier-pigeon'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('--dup-rate: must be between 0 and 1');
    expect(result.stderr).toContain('--mode: must be push or pub');
  });
});
