export const PositionLostErrorCode = {
  /** A field of the state hash is below what this process last confirmed there: Redis went back. */
  INGEST_POSITION_LOST: 'INGEST_POSITION_LOST',
} as const;
export type PositionLostErrorCode = (typeof PositionLostErrorCode)[keyof typeof PositionLostErrorCode];

/** One state-hash field that went back. */
export interface LostField {
  readonly field: string;
  /** What Redis holds now (0 when the field is gone). */
  readonly storedSeq: bigint;
  /** What this process last wrote and saw confirmed. */
  readonly confirmedSeq: bigint;
}

/**
 * Redis no longer holds the position this process wrote (it restarted without its data, or a
 * failover promoted a replica that lagged): the jobs after the stored position may be gone too.
 * Nothing of the write that found it was recorded as the new position.
 */
export class PositionLostError extends Error {
  readonly code: PositionLostErrorCode = PositionLostErrorCode.INGEST_POSITION_LOST;

  constructor(readonly fields: readonly LostField[]) {
    super(`ingest position in Redis went back: ${fields.map((f) => `${f.field} ${f.confirmedSeq} → ${f.storedSeq}`).join(', ')}`);
    this.name = 'PositionLostError';
  }
}
