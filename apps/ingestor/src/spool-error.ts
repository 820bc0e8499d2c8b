export const SpoolErrorCode = {
  SPOOL_CORRUPT: 'SPOOL_CORRUPT',
  SPOOL_FULL: 'SPOOL_FULL',
} as const;
export type SpoolErrorCode = (typeof SpoolErrorCode)[keyof typeof SpoolErrorCode];

/** The spool file cannot be read back, or has reached its size limit. */
export class SpoolError extends Error {
  readonly code: SpoolErrorCode;

  constructor(code: SpoolErrorCode, message: string) {
    super(message);
    this.name = 'SpoolError';
    this.code = code;
  }
}
