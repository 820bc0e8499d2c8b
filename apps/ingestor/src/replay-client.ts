/**
 * Client of the engine's replay endpoint (ZMQ REQ/REP). A request is JSON
 * {shard, from_sequence, limit}; the reply is one multipart message, each frame one raw message
 * as the engine sent it (a single empty frame = nothing). Requests are serialized. The socket
 * is "relaxed" and "correlated", so after a timeout the next request can go out and a late
 * reply to the old one is discarded instead of being taken for the new one.
 */
import { Request } from 'zeromq';
import { ReplayError } from './replay-error.js';

export interface ReplayClientOptions {
  /** How long to wait for one reply, ms. */
  readonly timeoutMs: number;
  /** Messages asked for per request. */
  readonly pageMessages: number;
}

export class ReplayClient {
  private readonly socket: Request;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    readonly endpoint: string,
    private readonly options: ReplayClientOptions,
  ) {
    this.socket = new Request({
      relaxed: true,
      correlate: true,
      receiveTimeout: options.timeoutMs,
      sendTimeout: options.timeoutMs,
      linger: 0,
    });
    this.socket.connect(endpoint);
  }

  get pageMessages(): number {
    return this.options.pageMessages;
  }

  /** One page of a stream ("global", a symbol, or "funding") from `fromSeq` on. */
  page(stream: string, fromSeq: bigint): Promise<Buffer[]> {
    const run = this.chain.then(() => this.exchange(stream, fromSeq));
    this.chain = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.socket.close();
  }

  private async exchange(stream: string, fromSeq: bigint): Promise<Buffer[]> {
    // Built by hand: from_sequence may exceed 2^53 and must stay an exact JSON integer.
    const request = `{"shard":${JSON.stringify(stream)},"from_sequence":${fromSeq},"limit":${this.options.pageMessages}}`;
    try {
      await this.socket.send(request);
      const frames = await this.socket.receive();
      return frames.filter((f) => f.length > 0);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'EAGAIN') throw new ReplayError('REPLAY_TIMEOUT', `replay endpoint ${this.endpoint} did not answer within ${this.options.timeoutMs} ms`, { cause: error });
      throw new ReplayError('REPLAY_FAILED', `replay request to ${this.endpoint} failed: ${(error as Error).message}`, { cause: error });
    }
  }
}
