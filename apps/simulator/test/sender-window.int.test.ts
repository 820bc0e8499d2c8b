/**
 * sendPaced's closed loop (the bench's sustained-maximum step) over real ZMQ sockets: while the
 * window answers 0 nothing more is sent, and sending resumes where it stopped, in order.
 */
import { describe, expect, it } from 'vitest';
import { Pull } from 'zeromq';
import { freePort } from '@settlement/testing';
import { sendPaced } from '../src/index.js';

describe('sendPaced with a window', () => {
  it('sends only what the window allows, and resumes in order when it opens', { timeout: 20_000 }, async () => {
    const port = await freePort();
    const pull = new Pull();
    await pull.bind(`tcp://127.0.0.1:${port}`);
    const received: string[] = [];
    const receiving = (async () => {
      for await (const [frame] of pull) {
        received.push(frame!.toString());
        if (received.length === 300) return;
      }
    })();

    let open = false;
    const asked: number[] = [];
    const sending = sendPaced(300, (i) => `m${i}`, {
      mode: 'push',
      endpoint: `tcp://127.0.0.1:${port}`,
      ratePerSecond: 0,
      // At most 7 per burst up to 100 messages, then closed until the test opens it.
      window: (sent) => {
        asked.push(sent);
        return sent < 100 ? Math.min(7, 100 - sent) : open ? 1000 : 0;
      },
    });

    const deadline = Date.now() + 5_000;
    while (received.length < 100 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toHaveLength(100);
    // It kept asking while closed, and never sent past 100.
    expect(asked.filter((n) => n === 100).length).toBeGreaterThan(10);

    open = true;
    const report = await sending;
    await receiving;
    pull.close();
    expect(report.sent).toBe(300);
    expect(received).toEqual(Array.from({ length: 300 }, (_, i) => `m${i}`));
    // Bursts before the window closed were at most 7 messages.
    const beforeClose = asked.filter((n) => n < 100);
    expect(beforeClose.every((n, k) => k === 0 || n - beforeClose[k - 1]! <= 7)).toBe(true);
  });
});
