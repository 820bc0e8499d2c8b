import { describe, expect, it } from 'vitest';
import { decodeHeartbeat, encodeHeartbeat, type Heartbeat } from './heartbeat.js';

const beat: Heartbeat = {
  app: 'settler', instanceId: 'ab12cd34', pid: 42, hostname: 'settler-1', startedAt: '2026-01-01T00:00:00.000Z', updatedAt: '2026-01-01T00:00:05.000Z',
  metrics: [{ name: 'settler_batches_total', values: [] }], status: { btc_usdt: { lastSeq: '9', lagMessages: 0, leaseHeld: true } },
};

describe('heartbeat (every app → dashboard)', () => {
  it('round-trips, bigints in the status as decimal strings', () => {
    expect(decodeHeartbeat(encodeHeartbeat(beat))).toEqual(beat);
    expect(decodeHeartbeat(encodeHeartbeat({ ...beat, status: { position: 2n ** 64n - 1n } }))?.status).toEqual({ position: '18446744073709551615' });
  });

  it('is undefined for a value that is not a heartbeat', () => {
    expect(decodeHeartbeat('not json')).toBeUndefined();
    expect(decodeHeartbeat(JSON.stringify({ ...beat, pid: 'x' }))).toBeUndefined();
    expect(decodeHeartbeat(JSON.stringify({ ...beat, app: '' }))).toBeUndefined();
  });
});
