export const RING_ERROR_CODES = {
  badOptions: 'bad_options',
  badState: 'bad_state',
  addressTaken: 'address_taken',
  notWhole: 'not_whole',
  nodeNotRunning: 'node_not_running',
} as const;

export type RingErrorCode = (typeof RING_ERROR_CODES)[keyof typeof RING_ERROR_CODES];

/** A local ring could not be started, found or driven; `code` says which way. */
export class RingError extends Error {
  override readonly name = 'RingError';

  constructor(
    readonly code: RingErrorCode,
    message: string,
  ) {
    super(message);
  }
}
