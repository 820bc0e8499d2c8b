/**
 * A Cassandra request of a settlement job failed. The job is not retried in place: the settler
 * drops its row cache and what it remembers of the shard, backs off, and starts the job again
 * from reading the watermark, because storage may have lost acknowledged batches meanwhile.
 */
export class StorageError extends Error {
  override readonly name = 'StorageError';

  constructor(
    readonly shard: string,
    /** What was being done: read, load_rows, write, fence, dead_letter. */
    readonly op: string,
    /** The error kind (classifyError). */
    readonly kind: string,
    options: { cause: unknown },
  ) {
    super(`${op} on shard ${shard} failed (${kind}): ${options.cause instanceof Error ? options.cause.message : String(options.cause)}`, options);
  }
}
