/** The thing asked for (a trade, a reconciliation job, a dead letter) does not exist. */
export class NotFoundError extends Error {
  readonly code = 'NOT_FOUND' as const;

  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}
