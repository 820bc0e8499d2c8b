import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MarketCatalog, testCatalogInput } from '@settlement/domain';
import { IngestCounts } from './counters.js';
import type { Flusher } from './flusher.js';
import { IngestPipeline, type GapFill } from './pipeline.js';
import type { ReplayClient } from './replay-client.js';
import { Replayer } from './replayer.js';

const catalog = new MarketCatalog({ ...testCatalogInput(), symbols: testCatalogInput().symbols.filter((s) => s.name === 'btc_usdt') });
const PAGE_MESSAGES = 10;
const ENGINE_TOP = 30;

function trade(seq: number): Buffer {
  return Buffer.from(
    `{"trade_id":${seq},"buy_order_id":1,"sell_order_id":2,"buyer_user_id":10,"seller_user_id":11,"price":100000000,"quantity":5,` +
      `"base_asset":1,"quote_asset":2,"buyer_refund":0,"seller_refund":0,"match_seq":1,"output_sequence":${seq},"settled_at":1,` +
      `"buyer_quote_version":1,"buyer_base_version":1,"seller_base_version":1,"seller_quote_version":1}`,
  );
}

/** The engine's replay endpoint for trades 1-30, pages of 10; a page can be held until released. */
function engine(): { client: ReplayClient; hold: (fromSeq: bigint) => () => void } {
  const holds = new Map<bigint, Promise<void>>();
  const client = {
    pageMessages: PAGE_MESSAGES,
    async page(stream: string, fromSeq: bigint): Promise<Buffer[]> {
      await holds.get(fromSeq);
      if (stream !== 'global') return [];
      const frames: Buffer[] = [];
      for (let seq = Number(fromSeq); seq <= ENGINE_TOP && frames.length < PAGE_MESSAGES; seq++) frames.push(trade(seq));
      return frames;
    },
  } as unknown as ReplayClient;
  return {
    client,
    hold(fromSeq) {
      let release!: () => void;
      holds.set(fromSeq, new Promise<void>((resolve) => (release = resolve)));
      return release;
    },
  };
}

describe('Replayer', () => {
  it('a replay superseded by the catch-up after a position rebuild judges no hole: nothing is skipped as a gap', async () => {
    const fills: GapFill[] = [];
    const pipeline = new IngestPipeline({
      catalog,
      sequenceScope: 'global',
      batchMessagesMax: 100,
      batchWaitMs: 5,
      backlogWaitMs: 5,
      reorderWindowMs: 60_000,
      frameBytesMax: 10_000,
      state: new Map(),
      counts: new IngestCounts(),
      onRejected: () => undefined,
      onGapFilled: (fill) => fills.push(fill),
      fundingNumbering: 'auto',
    });
    const skipped: string[] = [];
    const { client, hold } = engine();
    const replayer = new Replayer(client, {
      pipeline,
      flusher: { inFlight: 0 } as unknown as Flusher,
      counts: new IngestCounts(),
      logger: pino({ level: 'silent' }),
      bufferMessagesMax: 1_000,
      kick: () => undefined,
      skipAndRecord: (stream, why) => {
        skipped.push(`${stream}: ${why}`);
        pipeline.skipHole(stream, Date.now());
      },
    });

    // The catch-up after a start delivers its first page (1-10); the second waits.
    const secondPage = hold(11n);
    replayer.catchUp();
    await expect.poll(() => pipeline.highestSeq('global')).toBe(10n);

    // Redis lost the position: it is rebuilt at 5 (the settled watermarks), the pipeline starts
    // over from there, and a new catch-up asks for everything after it — its first page slow.
    const position = new Map([['global', 5n], ['btc_usdt', 5n]]);
    pipeline.reset(position);
    const newFirstPage = hold(6n);
    replayer.catchUp();

    // The old replay goes on meanwhile: it must not judge the new position's hole (6-10).
    secondPage();
    await new Promise((resolve) => setTimeout(resolve, 20));
    newFirstPage();
    await replayer.settled();

    expect(skipped).toEqual([]);
    expect(fills).toEqual([]);
    expect(pipeline.hole('global')).toBeUndefined();
    const cut = pipeline.cut(Date.now() + 1_000, true, 100)!;
    expect(cut.jobs.flatMap((j) => j.messages.map((m) => Number(m.seq)))).toEqual(Array.from({ length: ENGINE_TOP - 5 }, (_, i) => i + 6));
  });
});
