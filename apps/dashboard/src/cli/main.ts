/** `settle` from source (bin/settle.mjs loads this through tsx). */
import { runCli } from './program.js';

const code = await runCli(process.argv, { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
process.stdout.write('', () => process.exit(code));
