/**
 * The engine's replay endpoint (ZMQ REP): a request {shard, from_sequence, limit} is answered
 * with one multipart message, each frame one journaled message as sent. An empty answer is a
 * single empty frame (ZMQ cannot send zero frames). A bad request gets an empty answer too and
 * is logged: the requester then records a gap, which is what it would do without an answer.
 */
import { isInteger, parse as parseLosslessJson } from 'lossless-json';
import { Reply } from 'zeromq';
import { z } from 'zod';
import type { Logger } from '@settlement/runtime';
import type { Journal } from './journal.js';

const replayRequestSchema = z.object({
  shard: z.string().regex(/^[a-z][a-z0-9_]{0,40}$/, 'must be a shard name'),
  from_sequence: z.bigint({ error: 'must be an unsigned integer' }).min(0n, { error: 'must not be negative' }),
  limit: z.bigint({ error: 'must be an unsigned integer' }).min(1n, { error: 'must be positive' }).max(100_000n, { error: 'must be at most 100000' }),
});

export type ReplayRequest = z.output<typeof replayRequestSchema>;

export function parseReplayRequest(text: string): { ok: true; request: ReplayRequest } | { ok: false; reason: string } {
  let raw: unknown;
  try {
    raw = parseLosslessJson(text, null, (value) => (isInteger(value) ? BigInt(value) : Number(value)));
  } catch (error) {
    return { ok: false, reason: `Invalid replay request: not JSON: ${(error as Error).message}` };
  }
  const result = replayRequestSchema.safeParse(raw);
  if (!result.success) {
    return { ok: false, reason: `Invalid replay request: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}` };
  }
  return { ok: true, request: result.data };
}

export interface ReplayServer {
  /** The bound endpoint (with the real port when bound to port 0 / "*"). */
  readonly endpoint: string;
  /** Requests answered so far. */
  readonly requests: () => number;
  close(): Promise<void>;
}

export async function serveReplay(journal: Journal, bind: string, logger?: Logger): Promise<ReplayServer> {
  const socket = new Reply({ linger: 0, sendTimeout: 5_000 });
  await socket.bind(bind);
  const endpoint = socket.lastEndpoint ?? bind;
  let requests = 0;
  const loop = (async () => {
    try {
      for await (const [frame] of socket) {
        const parsed = parseReplayRequest(frame?.toString('utf8') ?? '');
        let frames: string[] = [];
        if (parsed.ok) {
          frames = journal.replay(parsed.request.shard, parsed.request.from_sequence, Number(parsed.request.limit));
          logger?.debug({ shard: parsed.request.shard, fromSeq: parsed.request.from_sequence, messages: frames.length }, 'replay request answered');
        } else {
          logger?.warn({ reason: parsed.reason }, 'bad replay request');
        }
        requests += 1;
        await socket.send(frames.length > 0 ? frames : ['']);
      }
    } catch (error) {
      if (!socket.closed) logger?.error({ err: error }, 'replay server stopped');
    }
  })();
  return {
    endpoint,
    requests: () => requests,
    async close() {
      socket.close();
      await loop;
    },
  };
}
