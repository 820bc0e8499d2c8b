import { z } from 'zod';

/** Keyspace, table-name parts and queue names are interpolated into CQL/Redis keys: plain identifiers only. */
export const identifier = z
  .string()
  .regex(/^[a-z][a-z0-9_]{0,40}$/, 'must be a plain identifier: lower-case letter, then letters, digits or _ (at most 41)');

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();

/** User ids are stored in CQL bigint columns, as the wire format bounds them: at most 2^63-1. */
const USER_ID_MAX = 2n ** 63n - 1n;
/** The largest default quote divisor, 10^decimals with decimals at most 30. */
const QUOTE_DIVISOR_MAX = 10n ** 30n;

/**
 * An id or amount in config, as a bigint, never through a lossy number: a string of digits, a
 * bigint (YAML integers are read as bigint, see load.ts), or a number only while it is a safe
 * integer (a number above 2^53-1, with a fraction or written with an exponent has already lost
 * digits or was never whole). The message names the bound and the value.
 */
function configBigint(min: bigint, max: bigint, maxText: string) {
  return z
    .union([z.string(), z.bigint(), z.number()], { error: 'must be an integer: digits, or a YAML integer' })
    .transform((value, ctx): bigint => {
      let parsed: bigint;
      if (typeof value === 'bigint') {
        parsed = value;
      } else if (typeof value === 'number') {
        if (!Number.isSafeInteger(value)) {
          ctx.addIssue({ code: 'custom', message: `must be an exact integer (got the number ${value}); write an id above 2^53-1 as an integer or a string of digits, not a number with an exponent or a fraction` });
          return z.NEVER;
        }
        parsed = BigInt(value);
      } else {
        if (!/^\d{1,40}$/.test(value)) {
          ctx.addIssue({ code: 'custom', message: `must be a non-negative integer written in digits (got ${JSON.stringify(value.slice(0, 60))})` });
          return z.NEVER;
        }
        parsed = BigInt(value);
      }
      if (parsed < min || parsed > max) {
        ctx.addIssue({ code: 'custom', message: `must be ${min}..${maxText} (${max}), got ${parsed}` });
        return z.NEVER;
      }
      return parsed;
    });
}

/** A user id: 0..2^63-1, like the user ids of the messages. */
const userId = configBigint(0n, USER_ID_MAX, '2^63-1');

const hostPort = z.string().regex(/^[A-Za-z0-9.\-_]+(:\d{1,5})?$/, 'must be host or host:port');

export const assetSchema = z.object({
  id: positiveInt,
  code: z.string().regex(/^[A-Z0-9]{2,10}$/, 'must be 2-10 upper-case letters or digits'),
  /** Minor units per whole unit, as a power of ten. */
  decimals: z.number().int().min(0).max(30),
});

export const symbolSchema = z.object({
  name: identifier,
  base: positiveInt,
  quote: positiveInt,
  /**
   * quote amount = price × quantity / quote_divisor. Default 10^base.decimals (price in quote
   * minor units per whole base unit); 1 for engines that send pre-scaled prices.
   */
  quote_divisor: configBigint(1n, QUOTE_DIVISOR_MAX, '10^30').optional(),
});

export const settlementConfigSchema = z
  .object({
    scylladb: z.object({
      hosts: z.array(hostPort).min(1),
      local_data_center: z.string().min(1).default('datacenter1'),
      keyspace: identifier.default('trading'),
      replication_factor: positiveInt.default(1),
      /** Driver-side timeout for one request, ms. Default 12 000. */
      request_timeout_ms: positiveInt.default(12_000),
      /** Consistency for writes and reads: one, local_quorum or quorum. */
      consistency: z.enum(['one', 'local_one', 'local_quorum', 'quorum']).default('local_quorum'),
      /**
       * Width of a history bucket in shard sequences (user_trades, user_ledger): a partition holds
       * at most this many rows of one user (~610 B each). Used once, when the keyspace is created
       * (history_layout); a later change is ignored with a warning. Default 131 072 (≤ ~80 MB).
       */
      history_bucket_seqs: configBigint(1n, 1_048_576n, '1048576').default(65_536n),
    }),
    redis: z.object({
      url: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://'),
      /** BullMQ prefix; the braces are a Redis Cluster hash tag so one shard's keys share a slot. */
      prefix: z.string().regex(/^\{[a-z0-9_-]+\}$/, 'must be a hash tag like {settlement}').default('{settlement}'),
    }),
    zmq: z.object({
      settlement_port: z.number().int().min(1).max(65535).default(5557),
      bind_host: z.string().default('127.0.0.1'),
      /** Connect a SUB socket to this PUB endpoint as well (older engines). */
      pub_endpoint: z.string().regex(/^tcp:\/\//, 'must be a tcp:// endpoint').optional(),
      topic: z.string().min(1).default('settlement'),
      /** The engine's replay service (ZMQ REQ/REP), asked for missed ranges after a restart. */
      replay_endpoint: z.string().regex(/^tcp:\/\//, 'must be a tcp:// endpoint').optional(),
      /** ZMQ receive high-water mark, messages. */
      receive_high_water_mark: positiveInt.default(20_000),
      /**
       * After the socket runs empty, the ingestor waits this long before reading again, ms: the
       * messages of that pause are read in one wake-up of the event loop instead of one each.
       * 0 reads each message as it comes. Default 2.
       */
      read_pause_ms: nonNegativeInt.max(50).default(2),
    }),
    data_dir: z.string().min(1).default('./data'),
    backup: z
      .object({
        /** Append-only spool for jobs while Redis is unreachable, relative to data_dir. */
        spool_file: z.string().min(1).default('ingest-spool.jsonl'),
        /** Messages that cannot even be dead-lettered in Cassandra land here, relative to data_dir. */
        failed_trades_file: z.string().min(1).default('failed-trades.jsonl'),
        /**
         * Every bad frame the ingestor dead-letters, one JSON line each, relative to data_dir: the
         * copy that survives Cassandra losing its last seconds and Redis coming back empty at once.
         */
        dead_letters_file: z.string().min(1).default('dead-letters.jsonl'),
      })
      .prefault({}),
    /** global: output_sequence is one counter across symbols; per_symbol: one per symbol. */
    sequence_scope: z.enum(['global', 'per_symbol']).default('global'),
    /**
     * Whether the engine numbers funding events (sequence_id > 0): numbered, unnumbered
     * (sequence_id 0, as the original engine sends them), or auto (fixed by the stream's first
     * event). Reading a stream from two sockets (zmq.pub_endpoint) needs numbered. Default auto.
     */
    funding_numbering: z.enum(['auto', 'numbered', 'unnumbered']).default('auto'),
    /** Receives fees: a user id, 0..2^63-1, as digits or a YAML integer. Default 0. */
    fee_account_user_id: userId.default(0n),
    assets: z.array(assetSchema).min(1),
    symbols: z.array(symbolSchema).min(1),
    batch: z
      .object({
        /** Messages per settlement job. Default 50. */
        max_messages: positiveInt.max(1000).default(50),
        /** How long the ingestor waits to fill a job, ms. Default 5. */
        max_wait_ms: nonNegativeInt.max(10_000).default(5),
        /** Messages buffered in the ingestor before it stops reading ZMQ. Default 50 000. */
        buffer_messages_max: positiveInt.default(50_000),
      })
      .prefault({}),
    ingestor: z
      .object({
        /** How long a stream waits for a missing (reordered) sequence before it asks the replay endpoint or records a gap, ms. Default 20. */
        reorder_window_ms: nonNegativeInt.max(60_000).default(20),
        /** How long the ingestor waits for one reply of the engine's replay endpoint, ms. Default 2 000. */
        replay_timeout_ms: positiveInt.max(600_000).default(2_000),
        /** Messages asked for per replay request (the reply is one page). Default 1 000. */
        replay_page_messages: positiveInt.max(100_000).default(1_000),
        /**
         * Longest a partial job waits to fill while its shard's settler is busy (a job of the
         * shard waiting or being settled), ms. It is cut as soon as the settler is free, so jobs
         * grow exactly when the settler is busy, at no latency cost. Default 1 000.
         */
        backlog_wait_ms: nonNegativeInt.max(60_000).default(1_000),
        /**
         * How often the ingestor looks at the shard queues' wait and active lists while a shard
         * is backlogged, ms: the fallback; a settler's notice of a finished job makes it look at
         * once. Default 20.
         */
        backlog_poll_interval_ms: positiveInt.max(10_000).default(20),
        /** How often it looks while no shard is backlogged (a backlog is then found this much later), ms. Default 25. */
        backlog_idle_poll_interval_ms: positiveInt.max(10_000).default(25),
        /** Jobs written to Redis in one MULTI. Default 200. */
        flush_jobs_max: positiveInt.max(10_000).default(200),
        /** A Redis command slower than this counts as Redis unreachable (the ingestor spools), ms. Default 5 000. */
        redis_command_timeout_ms: positiveInt.default(5_000),
        /** How often the ingestor probes Redis while it spools, ms. Default 500. */
        spool_probe_interval_ms: positiveInt.default(500),
        /** Spool file size at which the ingestor stops reading ZMQ, bytes. Default 1 GiB. */
        spool_bytes_max: positiveInt.default(1024 ** 3),
        /** Largest frame accepted, bytes; a larger one is dead-lettered (truncated). Default 1 MiB. */
        frame_bytes_max: positiveInt.default(1024 ** 2),
        /** Dead letters written to Cassandra at once. Default 8. */
        dead_letter_concurrency: positiveInt.max(256).default(8),
        /** Dead letters waiting for Cassandra; beyond this they go to the failed-trades file. Default 10 000. */
        dead_letter_queue_max: positiveInt.default(10_000),
        /** On SIGTERM, how long the ingestor keeps reading frames already on its sockets, ms. Default 300. */
        shutdown_drain_ms: nonNegativeInt.max(60_000).default(300),
        /** Heartbeat (metrics and status in Redis) interval, ms. Default 5 000. */
        heartbeat_interval_ms: positiveInt.default(5_000),
        /**
         * How often the ingestor looks for shards halted on a range no job in Redis holds, to
         * have the engine's replay re-send it, ms. Default 1 000.
         */
        redrive_poll_interval_ms: positiveInt.max(600_000).default(1_000),
        /**
         * How often the ingestor writes its newest dead letters (kept in the Redis dead-letter
         * queue) to Cassandra again, ms: a Cassandra node with a periodic commit log can come back
         * without the last rows it acknowledged, and a dead letter has no job to re-apply it from.
         * Idempotent (a letter's row id is its identity). Often, because the letters must be
         * written back while Cassandra is up again and Redis still holds them. Default 5 000.
         */
        dead_letter_restore_interval_ms: positiveInt.max(3_600_000).default(5_000),
        /** Newest dead letters written again each time, at most. Default 1 000. */
        dead_letter_restore_max: positiveInt.max(100_000).default(1_000),
        /** Only letters received this recently are written again, s (older ones had every chance to be synced). Default 600. */
        dead_letter_restore_window_s: positiveInt.max(86_400).default(600),
        /** A range re-sent for a halted shard is asked for again after this long if it is still halted, ms. Default 30 000. */
        redrive_retry_after_ms: positiveInt.max(3_600_000).default(30_000),
      })
      .prefault({}),
    simulator: z
      .object({
        /** Users the simulated stream moves money between. Default 1 000. */
        users: positiveInt.max(10_000_000).default(1_000),
        /** Offered rate, messages/s; 0 sends as fast as the socket takes them. Default 2 000. */
        rate_per_second: nonNegativeInt.max(1_000_000).default(2_000),
        /** Seed of the deterministic stream. Default 1. */
        seed: nonNegativeInt.default(1),
        /** Endpoint the simulator's replay service (REP) binds. Default tcp://127.0.0.1:5558. */
        replay_bind: z.string().regex(/^tcp:\/\//, 'must be a tcp:// endpoint').default('tcp://127.0.0.1:5558'),
        /** Endpoint the simulator binds in PUB mode. Default tcp://127.0.0.1:5556. */
        pub_bind: z.string().regex(/^tcp:\/\//, 'must be a tcp:// endpoint').default('tcp://127.0.0.1:5556'),
        /** Share of trades that carry fees, 0-1. Default 0.3. */
        fee_share: z.number().min(0).max(1).default(0.3),
        /** Interval of the progress log line on long runs, ms. Default 5 000. */
        progress_interval_ms: positiveInt.default(5_000),
      })
      .prefault({}),
    settler: z
      .object({
        /** Statements in one LOGGED BATCH before a job is split. Default 600. */
        batch_statements_max: positiveInt.min(8).default(600),
        /**
         * Estimated bytes in one LOGGED BATCH before a job is split, as Cassandra sizes a batch.
         * Apache Cassandra ≥ 2.2 rejects a batch above batch_size_fail_threshold_in_kb (default
         * 50 KB), ScyllaDB above 1 MB (batch_size_fail_threshold_in_kb: 1024); 2.1 has no such
         * limit. A rejected batch halves the bound and is planned again. Default 40 000.
         */
        batch_bytes_max: positiveInt.min(4_096).default(40_000),
        /**
         * Completed settlement jobs each shard queue keeps, newest first, so that a settler can
         * apply again what a storage node lost (a periodic commit log loses up to its sync
         * period, 10 s by default, of acknowledged batches at a kill -9). At 5 000 messages/s in
         * 50-message jobs a shard completes 100 jobs/s: 3 000 is half a minute of full jobs, and
         * an hour at low rates (whichever ends first with completed_jobs_retained_s). Default 3 000.
         */
        completed_jobs_retained_max: positiveInt.min(100).default(3_000),
        /** Longest a completed settlement job is kept, s (with completed_jobs_retained_max). Default 3 600. */
        completed_jobs_retained_s: positiveInt.min(60).default(3_600),
        /**
         * Shard lease between settler processes, ms: the process holding a shard's lease settles
         * it (warm cache); the others take over when it expires. 0 turns leases off: every
         * process competes for every job (still one at a time per shard). Default 5 000.
         */
        shard_lease_ms: nonNegativeInt.default(5_000),
        /** BullMQ lock duration, ms; above the worst in-place retry. Default 60 000. */
        lock_duration_ms: positiveInt.default(60_000),
        /** Stalls before BullMQ fails a job; high, because a failed job would break the chain. */
        max_stalled_count: positiveInt.default(1000),
        retry_initial_ms: positiveInt.default(50),
        retry_max_ms: positiveInt.default(5_000),
        /** Balance rows cached per shard. Default 2 000 000. */
        cache_rows_max: positiveInt.default(2_000_000),
        /**
         * After its row cache of a shard was emptied (take-over, restart), a settler scans the
         * balance table once in the background so that no job reads rows again; it gives up past
         * this many rows read (every shard's). 0: never. Default 1 000 000.
         */
        cache_warm_rows_max: nonNegativeInt.default(1_000_000),
        /** How often BullMQ looks for jobs of dead settlers (lock expired) to hand them on, ms. Default 30 000. */
        stalled_interval_ms: positiveInt.default(30_000),
        /** user_balances partitions read at once when the row cache is cold. Default 16. */
        row_read_concurrency: positiveInt.max(256).default(16),
      })
      .prefault({}),
    reconciliation: z
      .object({
        /** Run the sampled check on a schedule (a job scheduler in the reconcile queue). Default true. */
        enabled: z.boolean().default(true),
        /** Interval of the scheduled check, s. Default 3 600. */
        interval_seconds: positiveInt.default(3600),
        /**
         * When the scheduled full sweep (every user, conservation per asset) runs: a cron pattern
         * (minute hour day month weekday, UTC). The hourly run checks the users whose balances
         * changed; this one also finds a row that went wrong without being written. A cron, not an
         * interval, so that restarts of the reconcilers do not move or repeat it. Default daily 03:00.
         */
        full_sweep_cron: z
          .string()
          .regex(/^\S+( \S+){4,5}$/, 'must be a cron pattern of 5 or 6 fields, e.g. "0 3 * * *"')
          .default('0 3 * * *'),
        /** Changed users a scheduled run checks one by one; above it, it runs a full sweep instead. Default 1 000 000. */
        changed_users_max: positiveInt.default(1_000_000),
        /** Users checked by the scheduled (and an unsized sample) run. Default 1 000. */
        sample_size: positiveInt.default(1000),
        /** Random token ranges a sample is drawn from. Default 10. */
        sample_ranges: positiveInt.max(10_000).default(10),
        /** Users read per page in full mode. */
        page_size: positiveInt.max(10_000).default(500),
        /** Users verified in parallel. */
        concurrency: positiveInt.max(256).default(16),
        /** Rows per page when reading a user's history or scanning ledger_events. Default 1 000. */
        history_page_rows: positiveInt.max(100_000).default(1000),
        /** With fix, how long a page waits for the settlers to apply its corrections before re-checking, ms. Default 30 000. */
        fix_wait_ms: positiveInt.max(3_600_000).default(30_000),
        /**
         * How long after a user's first read a mismatch is read again before it counts, ms. A
         * LOGGED BATCH whose coordinator died mid-write is not lost: the batchlog replays it
         * once it is older than twice the write timeout (write_request_timeout_in_ms, 2 s by
         * default), on the batchlog's replay schedule (every 60 s in Cassandra 2.1, 10 s from
         * 3.0). A row re-read sooner could be "fixed" while its batch is still to arrive.
         * Default 70 000: 2 × 2 s + 60 s and a margin. Set it above your cluster's figures.
         */
        confirm_delay_ms: nonNegativeInt.max(3_600_000).default(70_000),
        /** How long a negative balance waits for the shards to apply what was already enqueued before it is re-checked, ms. Default 30 000. */
        negative_cut_wait_ms: positiveInt.max(3_600_000).default(30_000),
        /** Sequence gaps and dead letters listed per shard in full mode. Default 1 000. */
        listed_per_shard_max: positiveInt.max(100_000).default(1000),
        /** BullMQ lock of a running reconcile job, renewed while it runs, ms. Default 60 000. */
        lock_duration_ms: positiveInt.default(60_000),
        /** Heartbeat (metrics and status in Redis) interval, ms. Default 5 000. */
        heartbeat_interval_ms: positiveInt.default(5_000),
      })
      .prefault({}),
    dashboard: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(3000),
        /** Bearer token or basic-auth password; required when host is not loopback. */
        token: z.string().min(12, 'must be at least 12 characters').optional(),
        user: z.string().default('admin'),
        /** How often the dashboard samples each shard's progress for the overview's last-hour charts, ms. Default 10 000. */
        overview_sample_interval_ms: z.number().int().min(100).max(600_000).default(10_000),
      })
      .prefault({}),
    log_level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .superRefine((config, ctx) => {
    const assetIds = new Set(config.assets.map((a) => a.id));
    if (assetIds.size !== config.assets.length) {
      ctx.addIssue({ code: 'custom', path: ['assets'], message: 'asset ids must be unique' });
    }
    const names = new Set<string>();
    config.symbols.forEach((symbol, i) => {
      for (const side of ['base', 'quote'] as const) {
        if (!assetIds.has(symbol[side])) {
          ctx.addIssue({ code: 'custom', path: ['symbols', i, side], message: `asset ${symbol[side]} is not in assets` });
        }
      }
      if (symbol.base === symbol.quote) {
        ctx.addIssue({ code: 'custom', path: ['symbols', i, 'quote'], message: 'quote must differ from base' });
      }
      if (names.has(symbol.name) || symbol.name === 'funding') {
        ctx.addIssue({ code: 'custom', path: ['symbols', i, 'name'], message: `symbol name ${symbol.name} is taken` });
      }
      names.add(symbol.name);
    });
    if (config.zmq.pub_endpoint !== undefined && config.funding_numbering !== 'numbered') {
      ctx.addIssue({
        code: 'custom',
        path: ['funding_numbering'],
        message:
          `must be numbered when zmq.pub_endpoint is set (got ${config.funding_numbering}): the ingestor then reads zmq.settlement_port and zmq.pub_endpoint, ` +
          'and an unnumbered funding event (sequence_id 0) received on both cannot be told from two events; read one socket, or have the engine number funding events',
      });
    }
    const loopback = ['127.0.0.1', 'localhost', '::1'].includes(config.dashboard.host);
    if (!loopback && config.dashboard.token === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['dashboard', 'token'],
        message: `is required when dashboard.host (${config.dashboard.host}) is not a loopback address`,
      });
    }
  });

export type SettlementConfigInput = z.input<typeof settlementConfigSchema>;
export type SettlementConfig = z.output<typeof settlementConfigSchema>;
export type AssetConfig = z.output<typeof assetSchema>;
export type SymbolConfig = z.output<typeof symbolSchema>;
