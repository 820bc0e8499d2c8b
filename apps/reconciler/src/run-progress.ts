/** A run's progress, reported after every page for whoever watches (the BullMQ job's progress). */
import type { Logger } from '@settlement/runtime';

export interface ReconcileProgress {
  readonly phase: 'users' | 'system' | 'done';
  /** Estimated share done, 0-100. */
  readonly percent: number;
  readonly usersChecked: number;
  readonly rowsChecked: number;
  readonly errors: number;
  readonly warnings: number;
}

export type ProgressListener = (progress: ReconcileProgress) => Promise<void> | void;

/** Calls `onProgress`, if any, never throwing. */
export function progressReporter(onProgress: ProgressListener | undefined, log: Logger): (progress: ReconcileProgress) => Promise<void> {
  return async (p) => {
    try {
      await onProgress?.(p);
    } catch (err) {
      // Progress is for people watching; a failed update must not fail the run.
      log.warn({ err }, 'progress update failed');
    }
  };
}
