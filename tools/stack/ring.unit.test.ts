import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RING_ERROR_CODES, RingError } from './ring-error.js';
import { LocalRing, openLocalRing, ringStateFile, startLocalRing } from './ring.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ring-unit-'));
  dirs.push(dir);
  return dir;
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('local ring options and state', () => {
  it('refuses more nodes than there are loopback addresses for them, before starting anything', async () => {
    const error = await startLocalRing({ nodes: 4, baseDir: tempDir() }, () => undefined).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RingError);
    expect((error as RingError).code).toBe(RING_ERROR_CODES.badOptions);
    expect((error as RingError).message).toBe('nodes must be an integer from 1 to 3 (one per 127.0.0.N address), got 4');
  });

  it('finds no ring where no state file is', () => {
    expect(openLocalRing(tempDir())).toBeUndefined();
  });

  it('reads a recorded ring: hosts, RF, and node numbers 1-N', () => {
    const dir = tempDir();
    const node = (n: number) => ({ dir: path.join(dir, `node${n}`), port: 9042, listenAddress: `127.0.0.${n}`, seeds: ['127.0.0.1'], heapMb: 512, readyTimeoutMs: 1000 });
    writeFileSync(ringStateFile(dir), JSON.stringify({ clusterName: 'c', port: 9042, ringReadyTimeoutMs: 1000, startedAt: '', nodes: [node(1), node(2), node(3)] }));
    const ring = openLocalRing(dir)!;
    expect(ring).toBeInstanceOf(LocalRing);
    expect(ring.hosts).toEqual(['127.0.0.1:9042', '127.0.0.2:9042', '127.0.0.3:9042']);
    expect(ring.replicationFactor).toBe(3);
    expect(ring.pidOf(2)).toBeUndefined();
    expect(() => ring.killNode(2)).toThrow('node 2 (127.0.0.2) is not running');
    expect(() => ring.pauseNode(4)).toThrow('node must be 1-3, got 4');
  });
});
