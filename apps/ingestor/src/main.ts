/**
 * The ingestor process: npx tsx apps/ingestor/src/main.ts (config: SETTLEMENT_CONFIG or
 * config/settlement.yaml). SIGTERM flushes everything held and exits 0.
 */
import { runApp } from '@settlement/runtime';
import { startIngestor } from './start.js';

void runApp('ingestor', startIngestor);
