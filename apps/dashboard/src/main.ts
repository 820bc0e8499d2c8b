/**
 * Dashboard entry. `node main.js` (no arguments) serves bull-board, the JSON API and /metrics;
 * `node main.js <command> …` runs the `settle` CLI, so the Docker image's one bundle is both.
 */
import { runApp } from '@settlement/runtime';
import { runCli } from './cli/program.js';
import { startDashboard } from './server/start.js';

if (process.argv.length > 2) {
  const code = await runCli(process.argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
  // Exit once stdout is flushed: a driver's idle timer must not keep a finished command alive.
  process.stdout.write('', () => process.exit(code));
} else {
  await runApp('dashboard', startDashboard);
}
