/**
 * Sends a schedule over ZMQ at a target rate. Pacing is by deadline, not by sleeping per
 * message: at each wake-up the sender computes how many messages are due since the start and
 * sends them in one burst, so timer granularity (about 1 ms) does not cap the rate.
 */
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { Push, XPublisher } from 'zeromq';
import type { Logger } from '@settlement/runtime';

export interface SendOptions {
  /** push: connect a PUSH socket to the ingestor's PULL; pub: bind a PUB socket. */
  readonly mode: 'push' | 'pub';
  /** push: endpoint to connect to; pub: endpoint to bind. */
  readonly endpoint: string;
  /** Offered rate, messages/s; 0 sends as fast as the socket takes them. */
  readonly ratePerSecond: number;
  /** PUB topic frame. Default "settlement". */
  readonly topic?: string;
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** Interval of the progress log line, ms. Default 5 000. */
  readonly progressIntervalMs?: number;
  /** ZMQ send high-water mark, messages. Default 100 000. */
  readonly sendHighWaterMark?: number;
  /** PUB mode: how long to wait for the first subscriber before sending, ms. Default 10 000. */
  readonly subscriberWaitMs?: number;
  /** How long closing the socket may wait to deliver queued messages, ms. Default 30 000. */
  readonly lingerMs?: number;
  /**
   * Unpaced only: how many messages a burst may send, asked before each burst with the count
   * sent so far; while it answers 0 the sender waits 1 ms and asks again. A closed loop, e.g.
   * "keep at most N messages unsettled". Default: UNPACED_BURST every time.
   */
  readonly window?: (sent: number) => number;
}

export interface SendReport {
  readonly sent: number;
  readonly elapsedMs: number;
  readonly achievedRatePerSecond: number;
  readonly aborted: boolean;
}

/** Messages sent between two looks at the clock / event loop when unpaced. */
const UNPACED_BURST = 512;

export async function sendPaced(count: number, frameAt: (i: number, nowMs: number) => string, options: SendOptions): Promise<SendReport> {
  if (!(options.ratePerSecond >= 0)) throw new RangeError(`ratePerSecond must be >= 0, got ${options.ratePerSecond}`);
  const topic = options.topic ?? 'settlement';
  const hwm = options.sendHighWaterMark ?? 100_000;
  const linger = options.lingerMs ?? 30_000;
  let send: (frame: string) => Promise<void>;
  let close: () => void;
  if (options.mode === 'push') {
    const socket = new Push({ sendHighWaterMark: hwm, linger });
    socket.connect(options.endpoint);
    send = (frame) => socket.send(frame);
    close = () => socket.close();
  } else {
    // XPUB shows subscriptions, so the sender can wait for the subscriber instead of losing
    // the first messages (the PUB "slow joiner"); noDrop makes a full subscriber slow us down.
    const socket = new XPublisher({ sendHighWaterMark: hwm, linger, noDrop: true });
    await socket.bind(options.endpoint);
    await Promise.race([socket.receive(), sleep(options.subscriberWaitMs ?? 10_000)]);
    send = (frame) => socket.send([topic, frame]);
    close = () => socket.close();
  }

  const rate = options.ratePerSecond;
  const progressEveryMs = options.progressIntervalMs ?? 5_000;
  const started = performance.now();
  let nextProgressMs = progressEveryMs;
  let i = 0;
  let aborted = false;
  try {
    while (i < count) {
      if (options.signal?.aborted) {
        aborted = true;
        break;
      }
      const elapsedMs = performance.now() - started;
      let end: number;
      if (rate > 0) {
        end = Math.min(count, Math.floor((elapsedMs * rate) / 1000) + 1);
        if (end <= i) {
          // Ahead of schedule: wait until the next message is due.
          await sleep(Math.max(0, (i * 1000) / rate - elapsedMs));
          continue;
        }
      } else {
        const allowed = Math.min(UNPACED_BURST, options.window?.(i) ?? UNPACED_BURST);
        if (allowed <= 0) {
          await sleep(1);
          continue;
        }
        end = Math.min(count, i + allowed);
      }
      // settled_at is the send time: a blocked send (high-water mark) must not back-date it.
      for (; i < end; i++) await send(frameAt(i, Date.now()));
      if (elapsedMs >= nextProgressMs) {
        nextProgressMs += progressEveryMs;
        options.logger?.info({ sent: i, total: count, elapsedMs: Math.round(elapsedMs), ratePerSecond: Math.round((i * 1000) / elapsedMs) }, 'simulator progress');
      }
      // Let other work (the replay server, timers) run between bursts.
      await yieldToEventLoop();
    }
  } finally {
    close();
  }
  const elapsedMs = performance.now() - started;
  return { sent: i, elapsedMs, achievedRatePerSecond: elapsedMs > 0 ? (i * 1000) / elapsedMs : 0, aborted };
}
