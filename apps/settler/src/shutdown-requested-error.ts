/** The process is stopping while a job still waits for a write: the job goes back to the queue. */
export class ShutdownRequestedError extends Error {
  readonly code = 'SHUTDOWN_REQUESTED' as const;

  constructor(readonly shard: string) {
    super(`settler of shard ${shard} is stopping before its batch was acknowledged`);
    this.name = 'ShutdownRequestedError';
  }
}
