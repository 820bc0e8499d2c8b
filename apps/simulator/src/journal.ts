/**
 * What the simulated engine has sent, by stream, so it can serve its replay endpoint. Like an
 * engine's output log, a stream is journaled in sequence order: sending a message journals every
 * earlier message of its stream too (a swapped neighbour is in the journal before it is sent).
 * Malformed frames are in the log too, where they were sent among the trades: a replay of the
 * global stream serves them again at their place, as an engine re-sending its log would.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { FUNDING_SHARD } from '@settlement/domain';
import type { SimMessage } from './generator.js';
import { completeMessage } from './wire-format.js';

/** The stream name the replay endpoint accepts for all trades (the engine's one counter). */
export const GLOBAL_STREAM = 'global';

class StreamJournal {
  readonly bytes: (string | undefined)[];
  /** Index of the last journaled message; journaled messages are always a prefix. */
  through = -1;

  constructor(readonly messages: readonly SimMessage[]) {
    this.bytes = new Array<string | undefined>(messages.length);
  }

  /** First index whose seq is at or above `seq` (messages are sorted by seq). */
  lowerBound(seq: bigint): number {
    let lo = 0;
    let hi = this.messages.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.messages[mid]!.seq < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export class Journal {
  private readonly trades: StreamJournal;
  private readonly funding: StreamJournal;
  /** Malformed frames sent, in order, each with the index of the trade sent after it. */
  private readonly malformed: { beforeTrade: number; raw: string }[] = [];
  private readonly malformedNoted = new Set<number>();
  private readonly file: WriteStream | undefined;

  constructor(messages: readonly SimMessage[], journalFile?: string) {
    this.trades = new StreamJournal(messages.filter((m) => m.kind === 'trade'));
    this.funding = new StreamJournal(messages.filter((m) => m.kind === 'funding'));
    if (journalFile !== undefined) {
      mkdirSync(path.dirname(journalFile), { recursive: true });
      this.file = createWriteStream(journalFile, { flags: 'a' });
    }
  }

  get journaledCount(): number {
    return this.trades.through + 1 + this.funding.through + 1;
  }

  /** The bytes of a message as sent (journaling it, and its stream up to it, on first use). */
  bytesFor(message: SimMessage, nowMs: number): string {
    const stream = message.kind === 'trade' ? this.trades : this.funding;
    while (stream.through < message.streamIndex) {
      const next = stream.through + 1;
      const m = stream.messages[next]!;
      const raw = completeMessage(m.head, nowMs);
      stream.bytes[next] = raw;
      stream.through = next;
      this.file?.write(`{"shard":"${m.shard}","seq":"${m.seq}","raw":${JSON.stringify(raw)}}\n`);
    }
    return stream.bytes[message.streamIndex]!;
  }

  /** Journals a malformed frame (`key` identifies it: noting it again does nothing). */
  noteMalformed(key: number, raw: string): string {
    if (!this.malformedNoted.has(key)) {
      this.malformedNoted.add(key);
      this.malformed.push({ beforeTrade: this.trades.through + 1, raw });
    }
    return raw;
  }

  /**
   * Journaled messages of a stream from `fromSeq` on, at most `limit`: "global" = all trades,
   * a symbol = that symbol's trades, "funding" = numbered funding events.
   */
  replay(stream: string, fromSeq: bigint, limit: number): string[] {
    const out: string[] = [];
    if (stream === FUNDING_SHARD) {
      // Funding events sent with sequence_id 0 cannot be asked for by sequence.
      if (this.funding.messages[0]?.seq === 0n) return out;
      return this.collect(this.funding, fromSeq, limit, () => true);
    }
    if (stream === GLOBAL_STREAM) return this.collectWithMalformed(fromSeq, limit);
    return this.collect(this.trades, fromSeq, limit, (m) => m.shard === stream);
  }

  async close(): Promise<void> {
    const file = this.file;
    if (file === undefined) return;
    await new Promise<void>((resolve, reject) => file.end((error?: Error | null) => (error ? reject(error) : resolve())));
  }

  /**
   * The global stream with the malformed frames at their place. A page ends after a trade, never
   * between the bad frames and the trade after them (the next page starts at that trade), so it
   * may hold a few more than `limit` frames.
   */
  private collectWithMalformed(fromSeq: bigint, limit: number): string[] {
    const out: string[] = [];
    const trades = this.trades;
    const first = trades.lowerBound(fromSeq);
    let m = lowerBoundBy(this.malformed, first);
    for (let i = first; i <= trades.through && out.length < limit; i++) {
      while (m < this.malformed.length && this.malformed[m]!.beforeTrade <= i) out.push(this.malformed[m++]!.raw);
      out.push(trades.bytes[i]!);
    }
    if (out.length < limit) while (m < this.malformed.length) out.push(this.malformed[m++]!.raw);
    return out;
  }

  private collect(stream: StreamJournal, fromSeq: bigint, limit: number, keep: (m: SimMessage) => boolean): string[] {
    const out: string[] = [];
    for (let i = stream.lowerBound(fromSeq); i <= stream.through && out.length < limit; i++) {
      if (keep(stream.messages[i]!)) out.push(stream.bytes[i]!);
    }
    return out;
  }
}

/** First index of `list` (sorted by beforeTrade) whose beforeTrade is at or above `index`. */
function lowerBoundBy(list: readonly { beforeTrade: number }[], index: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.beforeTrade < index) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
