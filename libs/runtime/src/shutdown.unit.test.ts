import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Shutdown } from './shutdown.js';

describe('Shutdown', () => {
  it('runs every step in reverse order, even after one fails, and reports the failure', async () => {
    const shutdown = new Shutdown(pino({ level: 'silent' }));
    const ran: string[] = [];
    shutdown.add('clients', async () => void ran.push('clients'));
    shutdown.add('workers', async () => {
      ran.push('workers');
      throw new Error('worker close failed');
    });
    shutdown.add('server', async () => void ran.push('server'));
    const first = shutdown.run();
    expect(shutdown.run()).toBe(first);
    expect(await first).toBe(1);
    expect(ran).toEqual(['server', 'workers', 'clients']);
  });

  it('exits 0 when every step succeeds', async () => {
    const shutdown = new Shutdown(pino({ level: 'silent' }));
    shutdown.add('only', async () => undefined);
    expect(await shutdown.run()).toBe(0);
  });
});
