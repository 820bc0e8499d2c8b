/**
 * Bundles one app (apps/<name>/src/main.ts) with esbuild into dist/apps/<name>/main.js, for the
 * Docker images. Native and driver packages stay external and come from node_modules.
 * Usage: tsx tools/build/bundle.ts apps/<name>
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const projectRoot = process.argv[2];
if (!projectRoot || !projectRoot.startsWith('apps/')) {
  process.stderr.write('usage: bundle.ts apps/<name>\n');
  process.exit(2);
}

await build({
  entryPoints: [path.join(ROOT, projectRoot, 'src', 'main.ts')],
  outfile: path.join(ROOT, 'dist', projectRoot, 'main.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  tsconfig: path.join(ROOT, 'tsconfig.base.json'),
  packages: 'external',
  logLevel: 'warning',
});
process.stdout.write(`built dist/${projectRoot}/main.js\n`);
