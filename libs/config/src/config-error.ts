/** A configuration value is missing or wrong; the message names the key and what was expected. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID' as const;

  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
