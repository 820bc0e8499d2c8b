/**
 * Which history tables the settler writes. The layout is the keyspace's (bucket width, and
 * whether `settle migrate-history` is done): read at start and every `refreshMs` while the
 * backfill runs, so the pre-bucket tables stop being written soon after it is done (README
 * "History buckets").
 */
import type { Logger } from 'pino';
import type { SettlementConfig } from '@settlement/config';
import { HISTORY_MODE_REFRESH_MS, type HistoryLayoutRepository, type SettlementWriter } from '@settlement/scylla';

/** Sets the writer's mode now and keeps it current; returns what stops the refresh. */
export async function keepHistoryModeCurrent(options: {
  readonly layout: HistoryLayoutRepository;
  readonly writer: SettlementWriter;
  readonly config: Readonly<SettlementConfig>;
  readonly logger: Logger;
  readonly refreshMs?: number | undefined;
}): Promise<{ stop(): void }> {
  const { layout, writer, config, logger } = options;
  const keyspace = config.scylladb.keyspace;
  const mode = await layout.writeMode(config.scylladb.history_bucket_seqs);
  if (mode.bucketSeqs !== config.scylladb.history_bucket_seqs) {
    logger.warn({ configured: config.scylladb.history_bucket_seqs.toString(), keyspace: mode.bucketSeqs.toString() }, 'scylladb.history_bucket_seqs ignored: the keyspace keeps the bucket width it was created with');
  }
  if (mode.dualWrite) logger.warn({ keyspace }, 'history written to both layouts until `settle migrate-history` is done');
  writer.setHistoryMode(mode);
  const timer = setInterval(() => {
    if (!writer.historyMode.dualWrite) return;
    void layout
      .writeMode(mode.bucketSeqs)
      .then((now) => {
        if (!now.dualWrite) logger.info({ keyspace }, 'history migration done: the pre-bucket history tables are no longer written');
        writer.setHistoryMode({ bucketSeqs: mode.bucketSeqs, dualWrite: now.dualWrite });
      })
      .catch((error: unknown) => logger.debug({ err: error }, 'history layout poll failed'));
  }, options.refreshMs ?? HISTORY_MODE_REFRESH_MS);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
