/** Codes of the reasons a message or computation is rejected. */
export const DomainErrorCode = {
  INVALID_MESSAGE: 'INVALID_MESSAGE',
  UNKNOWN_ASSET: 'UNKNOWN_ASSET',
  UNKNOWN_SYMBOL: 'UNKNOWN_SYMBOL',
  INEXACT_AMOUNT: 'INEXACT_AMOUNT',
  INVALID_DIVISOR: 'INVALID_DIVISOR',
  AMOUNT_OVERFLOW: 'AMOUNT_OVERFLOW',
  DUPLICATE_TRADE: 'DUPLICATE_TRADE',
  INVALID_JOB: 'INVALID_JOB',
  INVALID_EPOCH: 'INVALID_EPOCH',
} as const;
export type DomainErrorCode = (typeof DomainErrorCode)[keyof typeof DomainErrorCode];

/** A rule of the domain was broken. `message` names the field and the value. */
export class DomainError extends Error {
  readonly code: DomainErrorCode;
  /** Dotted path of the offending field, where there is one. */
  readonly field: string | undefined;

  constructor(code: DomainErrorCode, message: string, field?: string) {
    super(message);
    this.name = 'DomainError';
    this.code = code;
    this.field = field;
  }
}
