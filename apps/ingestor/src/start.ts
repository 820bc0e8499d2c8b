/**
 * Wiring: config → Redis (fail-fast, so an outage is noticed and spooled at once) → BullMQ queues
 * → persisted state (Redis hash + spool) → Cassandra side writer → pipeline → ZMQ sockets.
 * Shutdown runs in the reverse order of what needs what: stop reading, flush, drain, close.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEAD_LETTER_QUEUE, FUNDING_SHARD, MarketCatalog } from '@settlement/domain';
import { completedJobsRetainedOf, createRedisConnection, createSettlementQueue, listenJobsDone, startHeartbeat, type AppContext } from '@settlement/runtime';
import { createScyllaClient, DeadLetterRepository, scyllaOptionsFromConfig, SequenceGapRepository, WatermarkRepository } from '@settlement/scylla';
import { BacklogWatch } from './backlog-watch.js';
import { CassandraWriter } from './cassandra-writer.js';
import { IngestCounts } from './counters.js';
import { FailedFile, JsonLinesFile } from './failed-file.js';
import { Flusher } from './flusher.js';
import { GapFillWriter } from './gap-fill-writer.js';
import { Ingestor } from './ingestor.js';
import { JobWriter } from './job-writer.js';
import { IngestorMetrics } from './metrics.js';
import { IngestPipeline, type GapFill, type RejectedFrame } from './pipeline.js';
import { Receiver } from './receiver.js';
import { DeadLetterRestorer } from './dead-letter-restorer.js';
import { Redriver } from './redrive.js';
import { ReplayClient } from './replay-client.js';
import { Spool } from './spool.js';
import { mergeState, rebuildState, stateFields, stateKey } from './state.js';

/** Cassandra side writes get this long to finish on shutdown before they go to the file, ms. */
const SHUTDOWN_CASSANDRA_MS = 5_000;
/** The spool gets this long to drain on shutdown (the rest is drained by the next start), ms. */
const SHUTDOWN_SPOOL_DRAIN_MS = 5_000;
/** Wait between attempts to read the watermarks or Redis while recovering a lost position, ms. */
const RECOVERY_RETRY_MS = 500;
/** With no position in Redis, how long start-up waits for Cassandra's watermarks, ms. */
const WATERMARKS_WAIT_MS = 10_000;
const WATERMARKS_RETRY_MS = 500;

export async function startIngestor(ctx: AppContext): Promise<void> {
  const { config, logger, shutdown } = ctx;
  const catalog = new MarketCatalog(config);
  const counts = new IngestCounts();
  const metrics = new IngestorMetrics(counts);
  const ing = config.ingestor;

  const redis = createRedisConnection(config.redis.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: ing.redis_command_timeout_ms,
  });
  // Connection errors are expected during an outage; the writer notices them per command.
  redis.on('error', () => undefined);
  shutdown.add('redis', async () => {
    await redis.quit().catch(() => redis.disconnect());
  });

  const queueOptions = { connection: redis, prefix: config.redis.prefix, completedJobsRetained: completedJobsRetainedOf(config) };
  const queues = catalog.shards.map((shard) => createSettlementQueue(shard, queueOptions));
  const deadLetterQueue = new Queue(DEAD_LETTER_QUEUE, {
    ...queueOptions,
    // Dead letters are kept until someone looks at them.
    defaultJobOptions: { removeOnComplete: false, removeOnFail: false, attempts: 1 },
  });
  queues.push(deadLetterQueue);
  for (const queue of queues) queue.on('error', (error) => logger.debug({ err: error, queue: queue.name }, 'queue connection error'));
  shutdown.add('queues', () => Promise.allSettled(queues.map((q) => q.close())));
  const writer = new JobWriter(redis, queues, stateKey(config.redis.prefix));

  const scylla = createScyllaClient(scyllaOptionsFromConfig(config));
  shutdown.add('cassandra', () => scylla.shutdown());
  const watermarkRepository = new WatermarkRepository(scylla, config.scylladb.keyspace);
  const readWatermarks = async () => new Map((await watermarkRepository.list()).map((w) => [w.shard, w.lastSeq]));
  const replay = config.zmq.replay_endpoint === undefined ? undefined : new ReplayClient(config.zmq.replay_endpoint, { timeoutMs: ing.replay_timeout_ms, pageMessages: ing.replay_page_messages });

  const spool = new Spool(path.resolve(config.data_dir, config.backup.spool_file), ing.spool_bytes_max);
  if (spool.tornBytesDropped > 0) logger.error({ file: spool.file, bytes: spool.tornBytesDropped }, 'spool ended with a torn line; cut off');
  const tradeShards = catalog.shards.filter((shard) => shard !== FUNDING_SHARD);
  let spooled = spool.pending();
  // One flag for every wait of start-up: set once the process is told to stop.
  let stopping = false;
  shutdown.add('start-up', async () => {
    stopping = true;
  });
  const isStopping = (): boolean => stopping;
  // Redis may go away again while the position is loaded (a restart as this process starts, chaos
  // run seed 1811: start-up failed, exit 1): then it is loaded again, from the start.
  const rebuilt = await untilRedisHeld(redis, logger, isStopping, async () => {
    await waitForRedis(redis, config.redis.url, logger, isStopping);
    await writer.ready();
    const hash = await writer.readState();
    // Redis may have lost writes while nothing ran (restart without persistence, failover): the
    // settled watermarks are the floor of the position, and the only one when the hash is gone.
    const watermarks = await loadWatermarks(readWatermarks, Object.keys(hash).length === 0, logger, isStopping);
    const rebuilt = rebuildState({ hash, watermarks, tradeShards, sequenceScope: config.sequence_scope });
    if (rebuilt.raised.length > 0) {
      const absent = Object.keys(hash).length === 0;
      logger.warn(
        { state: stateFields(rebuilt.state), watermarks: stateFields(watermarks), raised: rebuilt.raised, spooledUnits: spooled.length },
        absent ? 'ingest state absent in Redis; starting from the shard watermarks in Cassandra, not from 0' : 'ingest state in Redis is behind the settled watermarks (Redis lost writes); raised to them',
      );
      if (absent && replay !== undefined && spooled.length > 0) {
        // The spool continues a chain Redis no longer has; the replay from the watermarks re-sends it.
        logger.warn({ units: spool.discardPending() }, 'spooled units dropped: the replay from the watermarks re-sends them');
        spooled = [];
      }
      await writer.resetState(rebuilt.state);
    } else {
      writer.setConfirmed(rebuilt.state);
    }
    return rebuilt;
  });
  const state = mergeState(stateFields(rebuilt.state), spooled);
  logger.info({ state: Object.fromEntries(state), spooledUnits: spooled.length }, 'ingest state loaded');

  const failedFile = new FailedFile(path.resolve(config.data_dir, config.backup.failed_trades_file));
  const deadLettersFile = path.resolve(config.data_dir, config.backup.dead_letters_file);
  const gapFills = new GapFillWriter(new SequenceGapRepository(scylla, config.scylladb.keyspace), failedFile, logger);
  const cassandra = new CassandraWriter(
    new DeadLetterRepository(scylla, config.scylladb.keyspace),
    new SequenceGapRepository(scylla, config.scylladb.keyspace),
    failedFile,
    {
      concurrency: ing.dead_letter_concurrency,
      queueMax: ing.dead_letter_queue_max,
      deadLettersFile: new JsonLinesFile(deadLettersFile),
    },
    logger,
  );

  const flusher = new Flusher(writer, spool, counts, metrics, { flushJobsMax: ing.flush_jobs_max, spoolProbeIntervalMs: ing.spool_probe_interval_ms }, logger);
  for (const [field, seq] of state) flusher.confirmed.set(field, seq.toString());
  // The pipeline reports rejected frames to the ingestor, which is built from the pipeline.
  let onRejected: (rejected: RejectedFrame) => void = () => undefined;
  let onGapFilled: (fill: GapFill) => void = () => undefined;
  const pipeline = new IngestPipeline({
    catalog,
    sequenceScope: config.sequence_scope,
    batchMessagesMax: config.batch.max_messages,
    batchWaitMs: config.batch.max_wait_ms,
    backlogWaitMs: ing.backlog_wait_ms,
    reorderWindowMs: ing.reorder_window_ms,
    frameBytesMax: ing.frame_bytes_max,
    state,
    counts,
    onRejected: (rejected) => onRejected(rejected),
    onGapFilled: (fill) => onGapFilled(fill),
    fundingNumbering: config.funding_numbering,
  });
  const ingestor = new Ingestor(pipeline, flusher, cassandra, replay, counts, metrics, {
    bufferMessagesMax: config.batch.buffer_messages_max,
    flushJobsMax: ing.flush_jobs_max,
    minDueDelayMs: Math.min(config.batch.max_wait_ms, ing.reorder_window_ms),
    shutdownFlushMs: 20_000,
  }, logger, async (jobId) => (await redis.exists(deadLetterQueue.toKey(jobId))) === 1, {
    writer,
    watermarks: readWatermarks,
    tradeShards,
    sequenceScope: config.sequence_scope,
    retryIntervalMs: RECOVERY_RETRY_MS,
    gapFills,
  });
  onRejected = ingestor.onRejected;
  onGapFilled = ingestor.onGapFilled;
  // A reconnection may reach a Redis that lost its data: check the position at once, not only
  // on the next write.
  redis.on('ready', () => {
    if (writer.reconnected) ingestor.checkPosition();
  });
  // A connection of its own: BullMQ defines its ~50 scripts on `redis`, and ioredis copies them
  // onto every pipeline made from it (~70 µs each, measured), which a poll every few ms pays;
  // it also keeps the poll's replies from waiting behind a large job MULTI.
  const pollRedis = redis.duplicate();
  pollRedis.on('error', () => undefined);
  const backlog = new BacklogWatch(pollRedis, new Map(catalog.shards.map((shard, i) => [shard, queues[i]!])), { backloggedMs: ing.backlog_poll_interval_ms, idleMs: ing.backlog_idle_poll_interval_ms }, ingestor);
  const stopListening = listenJobsDone(redis, config.redis.prefix, backlog.jobDone);
  backlog.start();
  shutdown.add('backlog watch', async () => {
    backlog.stop();
    stopListening();
    await pollRedis.quit().catch(() => pollRedis.disconnect());
  });
  const receiver = new Receiver(ingestor.onFrame, ingestor, logger, config.zmq.read_pause_ms);
  // Ranges halted settlers wait for (a hole no job in Redis holds), re-sent from the engine.
  const redriver = new Redriver({
    redis,
    prefix: config.redis.prefix,
    queues: new Map(catalog.shards.map((shard, i) => [shard, queues[i]!])),
    replay,
    catalog,
    sequenceScope: config.sequence_scope,
    jobMessagesMax: config.batch.max_messages,
    pollIntervalMs: ing.redrive_poll_interval_ms,
    retryAfterMs: ing.redrive_retry_after_ms,
    readWatermarks,
    logger,
  });
  redriver.start();
  shutdown.add('redrive', () => redriver.stop());
  // Dead letters written again from Redis: Cassandra may have lost its last acknowledged rows.
  const restorer = new DeadLetterRestorer({
    queue: deadLetterQueue,
    file: deadLettersFile,
    repository: new DeadLetterRepository(scylla, config.scylladb.keyspace),
    intervalMs: ing.dead_letter_restore_interval_ms,
    newestMax: ing.dead_letter_restore_max,
    windowMs: ing.dead_letter_restore_window_s * 1000,
    logger,
  });
  restorer.start();
  shutdown.add('dead-letter restore', () => restorer.stop());

  const heartbeat = startHeartbeat({
    redis,
    prefix: config.redis.prefix,
    app: 'ingestor',
    registry: metrics.registry,
    processMetrics: ctx.processMetrics,
    intervalMs: ing.heartbeat_interval_ms,
    status: () => {
      metrics.sync();
      return ingestor.status();
    },
  });

  // Registered last, so it runs first: stop reading, then write out everything held.
  shutdown.add('ingestor', async () => {
    await receiver.stop(ing.shutdown_drain_ms);
    await ingestor.flushAll();
    await flusher.close(SHUTDOWN_SPOOL_DRAIN_MS);
    await cassandra.drain(SHUTDOWN_CASSANDRA_MS);
    await gapFills.drain();
    replay?.close();
    spool.close();
    await heartbeat.stop();
    logger.info({ status: ingestor.status(), spoolUnits: spool.depthUnits }, 'ingestor flushed');
  });

  flusher.startDrain();
  const pullEndpoint = `tcp://${config.zmq.bind_host}:${config.zmq.settlement_port}`;
  await receiver.bindPull(pullEndpoint, config.zmq.receive_high_water_mark);
  if (config.zmq.pub_endpoint !== undefined) receiver.connectSub(config.zmq.pub_endpoint, config.zmq.topic, config.zmq.receive_high_water_mark);
  ingestor.catchUp();
  logger.info(
    { pull: pullEndpoint, sub: config.zmq.pub_endpoint ?? null, replay: config.zmq.replay_endpoint ?? null, sequenceScope: config.sequence_scope, spooling: flusher.spooling },
    'ingestor ready',
  );
}

/**
 * The settled watermarks at start-up. When Redis has no position at all they are the only
 * position left, so start-up waits for Cassandra up to WATERMARKS_WAIT_MS (then starts from 0
 * with an error: a full replay, or recorded gaps without one; never a silent skip); otherwise
 * they are a floor, and an unreachable Cassandra is logged and skipped (the hash is used as it is).
 */
async function loadWatermarks(
  read: () => Promise<Map<string, bigint>>,
  required: boolean,
  logger: AppContext['logger'],
  stopping: () => boolean,
): Promise<Map<string, bigint>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await read();
    } catch (error) {
      if (!required) {
        logger.warn({ err: error }, 'shard watermarks unreadable at start-up; resuming from the position in Redis as it is');
        return new Map();
      }
      if (stopping()) throw error;
      if (attempt * WATERMARKS_RETRY_MS >= WATERMARKS_WAIT_MS) {
        logger.error({ err: error, waitedMs: WATERMARKS_WAIT_MS }, 'no position in Redis and the shard watermarks are unreadable; starting from 0 (if Redis lost its data, the replay re-sends from the start, or the hole is recorded as a gap)');
        return new Map();
      }
      if (attempt === 1 || attempt % 10 === 0) logger.warn({ err: error, attempt }, 'no position in Redis and the shard watermarks are unreadable; waiting for Cassandra');
      await sleep(WATERMARKS_RETRY_MS);
    }
  }
}

/**
 * Runs a start-up step that needs Redis throughout; when the connection drops under it (any error
 * while the connection is not ready), runs it again once Redis is back. Other errors end start-up.
 */
async function untilRedisHeld<T>(redis: Redis, logger: AppContext['logger'], stopping: () => boolean, step: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await step();
    } catch (error) {
      if (stopping() || (redis.status === 'ready' && (error as Error).name !== 'MaxRetriesPerRequestError')) throw error;
      logger.warn({ err: error, status: redis.status }, 'Redis went away during start-up; loading the position again once it is back');
      await sleep(200);
    }
  }
}

/** Start-up needs Redis (for the persisted position); wait for it, logging every few seconds. */
async function waitForRedis(redis: Redis, url: string, logger: AppContext['logger'], stopping: () => boolean): Promise<void> {
  let lastLogMs = 0;
  while (redis.status !== 'ready') {
    if (stopping()) throw new Error('stopped while waiting for Redis');
    if (Date.now() - lastLogMs > 5_000) {
      lastLogMs = Date.now();
      logger.warn({ url: url.replace(/\/\/[^@]*@/, '//***@'), status: redis.status }, 'waiting for Redis');
    }
    await sleep(100);
  }
}
