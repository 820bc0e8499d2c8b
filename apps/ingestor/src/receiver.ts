/**
 * Reads frames from ZMQ: a bound PULL socket (the default) and optionally a SUB socket connected
 * to an older engine's PUB (frames: topic, then JSON). Backpressure: before each receive the
 * loop asks the gate; while the ingestor's buffer is full it stops reading, ZMQ's receive
 * high-water mark fills, and a PUSH engine blocks instead of losing messages.
 */
import { setImmediate as yieldToEventLoop, setTimeout as sleep } from 'node:timers/promises';
import { Pull, Subscriber, type Socket } from 'zeromq';
import type { Logger } from '@settlement/runtime';

export interface ReceiverGate {
  /** A promise to wait on while the buffer is full; undefined when there is room. */
  capacity(): Promise<void> | undefined;
}

/**
 * zeromq resolves receive() at once while messages are queued, so a busy socket would never let
 * timers or Redis replies run: yield to the event loop every this many frames.
 */
const FRAMES_PER_YIELD = 256;

export class Receiver {
  private readonly sockets: Socket[] = [];
  private readonly loops: Promise<void>[] = [];
  private lastFrameAtMs = 0;
  private stopping = false;

  /**
   * @param readPauseMs after the socket runs empty, wait this long before the next receive
   *   (zmq.read_pause_ms): each wake-up of the event loop then takes what arrived meanwhile.
   */
  constructor(
    private readonly onFrame: (frame: Buffer, nowMs: number) => void,
    private readonly gate: ReceiverGate,
    private readonly logger: Logger,
    private readonly readPauseMs = 0,
  ) {}

  async bindPull(endpoint: string, receiveHighWaterMark: number): Promise<void> {
    const socket = new Pull({ receiveHighWaterMark, linger: 0 });
    await socket.bind(endpoint);
    this.sockets.push(socket);
    this.loops.push(this.loop(socket, 'pull', endpoint));
  }

  connectSub(endpoint: string, topic: string, receiveHighWaterMark: number): void {
    const socket = new Subscriber({ receiveHighWaterMark, linger: 0 });
    socket.connect(endpoint);
    socket.subscribe(topic);
    this.sockets.push(socket);
    this.loops.push(this.loop(socket, 'sub', endpoint));
  }

  /**
   * Stops reading: keeps taking frames already on the sockets until they stay quiet for a
   * moment (or `drainMs` passed), then closes them.
   */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    const started = Date.now();
    const quietMs = Math.min(50, drainMs);
    while (Date.now() - started < drainMs && Date.now() - this.lastFrameAtMs < quietMs) await sleep(10);
    for (const socket of this.sockets) socket.close();
    await Promise.all(this.loops);
  }

  private async loop(socket: Pull | Subscriber, kind: 'pull' | 'sub', endpoint: string): Promise<void> {
    let sinceYield = 0;
    for (;;) {
      const wait = this.gate.capacity();
      if (wait !== undefined) await wait;
      let frames: Buffer[];
      try {
        frames = await socket.receive();
      } catch (error) {
        if (socket.closed || this.stopping) return;
        this.logger.error({ err: error, endpoint }, 'ZMQ receive failed');
        await sleep(100);
        continue;
      }
      const nowMs = Date.now();
      this.lastFrameAtMs = nowMs;
      if (kind === 'sub' && frames.length > 1) {
        // Frame 0 is the topic; every frame after it is one message. (A lone frame is passed on
        // whole, so a malformed publication is dead-lettered rather than ignored.)
        for (let i = 1; i < frames.length; i++) this.onFrame(frames[i]!, nowMs);
      } else {
        for (const frame of frames) this.onFrame(frame, nowMs);
      }
      sinceYield += 1;
      if (this.readPauseMs > 0 && !socket.readable && !this.stopping) {
        // Nothing more queued: let the next messages gather instead of waking for each.
        sinceYield = 0;
        await sleep(this.readPauseMs);
      } else if (sinceYield >= FRAMES_PER_YIELD) {
        sinceYield = 0;
        await yieldToEventLoop();
      }
    }
  }
}
