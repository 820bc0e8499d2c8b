/** Exit codes of `settle`, so scripts can tell an outage from a bad argument or a found break. */
export const ExitCode = {
  OK: 0,
  /** Redis or Cassandra unreachable, or an unexpected error. */
  FAILURE: 1,
  /** Bad arguments, a bad config file, or input rejected by validation. */
  USAGE: 2,
  /** The trade, job or dead letter asked for does not exist. */
  NOT_FOUND: 3,
  /** reconcile --wait: the run finished and found balance errors. */
  RECONCILE_ERRORS_FOUND: 4,
  /** reconcile --wait: the run itself failed (its reason is printed). */
  RECONCILE_FAILED: 5,
  /** reconcile --wait: the run did not finish within --timeout. */
  TIMEOUT: 6,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
