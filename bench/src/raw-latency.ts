/**
 * The latency reference for the half-max step: the same messages, at the same offered rate,
 * settled by the leanest pipeline there is — in this process, no ZMQ, no Redis, no BullMQ.
 * Each shard keeps one LOGGED BATCH in flight (the settler's single writer) and, whenever the
 * previous one is acknowledged, writes everything of the shard that has arrived since (at most
 * a full batch): group commit, the lowest latency a single writer per shard can have. Rows are
 * computed with the settler's own domain functions and statements built by its SettlementWriter.
 *
 * A message "arrives" at its scheduled send time (index / rate), and its latency runs from
 * there to the acknowledgement of its batch, as the service's runs from the ZMQ send to the
 * job's completion. Whatever the service's p99 is above this one is the service's own; what
 * this one has is Cassandra's on this machine.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SettlementMessage } from '@settlement/domain';
import type { SettlementWriter } from '@settlement/scylla';
import { LatencyRecorder } from './latency.js';
import { executeWithRetry, rawJobBatches, type RawChunking } from './raw-ceiling.js';

export interface RawLatencyResult {
  readonly ratePerS: number;
  readonly messages: number;
  readonly batches: number;
  readonly messagesPerBatch: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** LOGGED BATCH round trip alone, ms. */
  readonly batchWrite: { p50Ms: number; p99Ms: number };
}

export async function runRawLatency(options: {
  writer: SettlementWriter;
  /** The stream slice to write, sequenced, in stream order. */
  messages: readonly SettlementMessage[];
  ratePerS: number;
  batchMessagesMax: number;
  /** The settler's batch bounds: what has arrived is written as the settler would write it. */
  chunking: RawChunking;
}): Promise<RawLatencyResult> {
  const { writer, messages, ratePerS, batchMessagesMax, chunking } = options;
  const shards = new Map<string, { message: SettlementMessage; index: number }[]>();
  messages.forEach((message, index) => {
    let list = shards.get(message.shard);
    if (list === undefined) shards.set(message.shard, (list = []));
    list.push({ message, index });
  });
  const latency = new LatencyRecorder();
  const batchWrite = new LatencyRecorder();
  let batches = 0;
  let writeTimestampUs = BigInt(Date.now()) * 1000n;
  const nextWriteTimestampUs = (): bigint => (writeTimestampUs += 1n);
  const started = performance.now() + 50;
  const arrivalMs = (index: number): number => started + (index * 1000) / ratePerS;

  await Promise.all(
    [...shards.entries()].map(async ([shard, list]) => {
      const batchesOf = rawJobBatches(writer, shard, nextWriteTimestampUs, chunking);
      for (let next = 0; next < list.length; ) {
        const now = performance.now();
        const firstArrival = arrivalMs(list[next]!.index);
        if (firstArrival > now) {
          await sleep(firstArrival - now);
          continue;
        }
        let end = next + 1;
        while (end < list.length && end - next < batchMessagesMax && arrivalMs(list[end]!.index) <= now) end += 1;
        const arrivedMs = new Map(list.slice(next, end).map((e) => [e.message.seq, arrivalMs(e.index)]));
        // What arrived is one job; the settler writes its batches one after the other.
        for (const batch of batchesOf(list.slice(next, end).map((e) => e.message))) {
          const writeStarted = performance.now();
          // Retried on a timeout, as the settler retries: the time it takes is latency like any other.
          await executeWithRetry(writer, batch.statements);
          const done = performance.now();
          batchWrite.recordMs(done - writeStarted);
          for (const m of batch.messages) latency.recordMs(done - arrivedMs.get(m.seq)!);
          batches += 1;
        }
        next = end;
      }
    }),
  );
  const summary = latency.summary();
  const write = batchWrite.summary();
  return {
    ratePerS,
    messages: messages.length,
    batches,
    messagesPerBatch: batches === 0 ? 0 : Math.round((messages.length / batches) * 10) / 10,
    p50Ms: summary.p50Ms,
    p99Ms: summary.p99Ms,
    maxMs: summary.maxMs,
    batchWrite: { p50Ms: write.p50Ms, p99Ms: write.p99Ms },
  };
}
