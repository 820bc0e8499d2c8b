/** Settler process: config → logger → settler; SIGTERM finishes the current batches and exits 0. */
import { runApp } from '@settlement/runtime';
import { startSettler } from './settler.js';

await runApp('settler', async ({ config, logger, shutdown, processMetrics }) => {
  const settler = await startSettler({ config, logger, processMetrics });
  shutdown.add('settler', () => settler.close());
});
