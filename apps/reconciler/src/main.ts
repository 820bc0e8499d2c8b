/** The reconciler process: config → logger → startReconciler; SIGTERM closes it (exit 0). */
import { runApp } from '@settlement/runtime';
import { startReconciler } from './reconciler.js';

await runApp('reconciler', async ({ config, logger, shutdown, processMetrics }) => {
  const reconciler = await startReconciler({ config, logger, processMetrics });
  shutdown.add('reconciler', () => reconciler.close());
});
