export { ConfigError } from './config-error.js';
export { loadConfig, parseConfig, formatIssues, DEFAULT_CONFIG_FILE } from './load.js';
export { settlementConfigSchema, identifier } from './schema.js';
export type { SettlementConfig, SettlementConfigInput, AssetConfig, SymbolConfig } from './schema.js';
export { configHelp, configKeys, type ConfigKey } from './help.js';
