/**
 * Node CPU of the settler's per-job steps without I/O, per 1 000 trades:
 *   npx tsx apps/settler/perf/cpu-breakdown.ts
 * (job data JSON round trip as BullMQ does it, decode, plan, statements).
 */
import type cassandra from 'cassandra-driver';
import { MarketCatalog, balanceRowKey, decodeSettleJobLenient, encodeSettlementJob, planSettlement, type BalanceRow, type TradeMessage } from '@settlement/domain';
import { loadConfig } from '@settlement/config';
import { SettlementWriter } from '@settlement/scylla';
// The one seeded generator of the repository (the simulator's), so a seed means the same stream everywhere.
import { Rng } from '@settlement/simulator';

const config = loadConfig();
const catalog = new MarketCatalog(config);
const market = catalog.market('btc_usdt');
const rng = new Rng(1);
const TRADES = 30_000;
const trades: TradeMessage[] = Array.from({ length: TRADES }, (_, i) => {
  const seq = BigInt(i + 1);
  const quantity = BigInt(rng.int(1, 2_000)) * 10_000n;
  const price = BigInt(rng.int(1, 5_000)) * 10_000n;
  const quoteAmount = (price * quantity) / market.quoteDivisor;
  return {
    kind: 'trade', shard: 'btc_usdt', seq, tradeId: 1_000_000n + seq, buyOrderId: seq * 2n, sellOrderId: seq * 2n + 1n,
    buyerUserId: BigInt(rng.int(1, 10_000)), sellerUserId: BigInt(rng.int(1, 10_000)), price, quantity, quoteAmount,
    baseAsset: 1, quoteAsset: 2, buyerRefund: BigInt(rng.int(0, 100)), sellerRefund: 0n, buyerFee: quantity / 1000n, sellerFee: 0n,
    matchSeq: seq, outputSequence: seq, settledAt: 1_700_000_000_000n + seq, buyerQuoteVersion: seq, buyerBaseVersion: seq, sellerBaseVersion: seq, sellerQuoteVersion: seq,
  };
});
const jobs: string[] = [];
for (let i = 0; i < TRADES; i += 50) jobs.push(JSON.stringify(encodeSettlementJob('btc_usdt', i === 0 ? 0n : BigInt(i), trades.slice(i, i + 50))));
const writer = new SettlementWriter({ client: {} as cassandra.Client, keyspace: 'ks', symbols: ['btc_usdt'], consistency: 'one', feeAccountUserId: 0n });

function time(name: string, fn: () => void): void {
  fn();
  const started = performance.now();
  fn();
  const ms = performance.now() - started;
  process.stdout.write(`${name.padEnd(28)} ${((ms / TRADES) * 1000).toFixed(1).padStart(6)} ms per 1000 trades\n`);
}

const parsed: unknown[] = [];
time('JSON.parse job data', () => {
  parsed.length = 0;
  for (const j of jobs) parsed.push(JSON.parse(j));
});
const decoded: ReturnType<typeof decodeSettleJobLenient>[] = [];
time('decode', () => {
  decoded.length = 0;
  for (const p of parsed) decoded.push(decodeSettleJobLenient(p, 'btc_usdt'));
});
const rows = new Map<string, BalanceRow>();
const plans: ReturnType<typeof planSettlement>[] = [];
time('plan', () => {
  rows.clear();
  plans.length = 0;
  for (const d of decoded) {
    if (!d.ok) throw new Error(d.reason);
    const plan = planSettlement({
      shard: 'btc_usdt', market, assetIds: new Set([1, 2, 3]), feeAccountUserId: 0n, afterSeq: d.prevLastSeq, messages: d.messages,
      settledTradeSeqs: new Map(), current: (key) => rows.get(key), batchStatementsMax: 600,
    });
    for (const c of plan.chunks) for (const r of c.rows) rows.set(balanceRowKey(r.userId, r.assetId), r);
    plans.push(plan);
  }
});
time('build statements', () => {
  for (const plan of plans) for (const c of plan.chunks) {
    writer.buildStatements({ shard: 'btc_usdt', writeTimestampUs: 1n, trades: c.trades, fundingEvents: c.funding, balanceRows: c.rows, deadLetters: [], watermark: { lastSeq: c.lastSeq, batchCount: 1n, jobId: 'x', updatedAt: new Date() } });
  }
});
