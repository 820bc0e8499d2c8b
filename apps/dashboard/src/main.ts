/**
 * Dashboard entry. `node main.js` (no arguments) serves bull-board, the JSON API and /metrics;
 * `node main.js <command> …` runs the `settle` CLI, so the Docker image's one bundle is both;
 * `node main.js --help` describes the server and its config keys, `node main.js help` the CLI.
 */
import { appHelpText, runApp } from '@settlement/runtime';
import { runCli } from './cli/program.js';
import { startDashboard } from './server/start.js';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) {
  // The server's help (its config keys); `main.js help` is the CLI's.
  process.stdout.write(appHelpText('dashboard'), () => process.exit(0));
} else if (args.length > 0) {
  const code = await runCli(process.argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
  // Exit once stdout is flushed: a driver's idle timer must not keep a finished command alive.
  process.stdout.write('', () => process.exit(code));
} else {
  await runApp('dashboard', startDashboard);
}
