export const ReplayErrorCode = {
  REPLAY_TIMEOUT: 'REPLAY_TIMEOUT',
  REPLAY_FAILED: 'REPLAY_FAILED',
} as const;
export type ReplayErrorCode = (typeof ReplayErrorCode)[keyof typeof ReplayErrorCode];

/** The engine's replay endpoint did not answer in time, or the exchange failed. */
export class ReplayError extends Error {
  readonly code: ReplayErrorCode;

  constructor(code: ReplayErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReplayError';
    this.code = code;
  }
}
