/** A request or command argument failed validation; `field` names it, the message says why. */
export class InputError extends Error {
  readonly code = 'INVALID_INPUT' as const;

  constructor(
    message: string,
    /** Dotted path of the offending field (e.g. `userId`, `userIds.2`). */
    readonly field: string,
  ) {
    super(message);
    this.name = 'InputError';
  }
}
