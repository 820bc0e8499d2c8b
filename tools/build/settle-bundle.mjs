#!/usr/bin/env node
/**
 * Bundles the `settle` CLI (apps/dashboard/src/cli/main.ts) with esbuild into
 * dist/settle/settle.mjs, so `npx settle` starts in plain Node instead of transpiling ~100
 * TypeScript files through tsx at every call. Run by npm's `prepare` (after `npm ci` /
 * `npm install`) and again by apps/dashboard/bin/settle.mjs when a source file changed.
 * Plain JavaScript on purpose: it must run before anything is transpiled. Packages stay
 * external (from node_modules). Without esbuild (a production install) it does nothing: the
 * CLI then runs through tsx. `--quiet`: no output unless it fails.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUNDLE_DIR = path.join(ROOT, 'dist', 'settle');
const quiet = process.argv.includes('--quiet');
/** Packages loaded from node_modules at run time: native addons and drivers with optional native parts. */
const EXTERNAL = ['zeromq', 'cassandra-driver', 'pino', 'pino-pretty', 'thread-stream'];

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  if (!quiet) process.stderr.write('settle-bundle: esbuild is not installed (production install?): settle runs through tsx\n');
  process.exit(0);
}

const started = Date.now();
mkdirSync(BUNDLE_DIR, { recursive: true });
const result = await esbuild.build({
  entryPoints: [path.join(ROOT, 'apps', 'dashboard', 'src', 'cli', 'main.ts')],
  outfile: path.join(BUNDLE_DIR, 'settle.mjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  tsconfig: path.join(ROOT, 'tsconfig.base.json'),
  // Pure-JS packages are bundled too: resolving and reading hundreds of files from node_modules
  // was most of the remaining start-up. Native or optional-native ones stay external.
  external: EXTERNAL,
  // CommonJS packages inside an ES module bundle still call require() for Node's built-ins.
  banner: { js: "import { createRequire as __settleCreateRequire } from 'node:module'; const require = __settleCreateRequire(import.meta.url);" },
  metafile: true,
  write: false,
  logLevel: 'warning',
});
// Written under a temporary name, then renamed: a `settle` started meanwhile reads the old
// bundle or the new one, never half of one.
const [output] = result.outputFiles;
const target = path.join(BUNDLE_DIR, 'settle.mjs');
const temporary = `${target}.${process.pid}.tmp`;
writeFileSync(temporary, output.contents);
renameSync(temporary, target);
// The sources it was built from: bin/settle.mjs rebuilds (or falls back to tsx) when one of
// them is newer than the bundle.
const inputs = Object.keys(result.metafile.inputs)
  .filter((p) => !p.includes('node_modules/'))
  .map((p) => path.relative(ROOT, path.resolve(process.cwd(), p)));
const list = path.join(BUNDLE_DIR, 'inputs.json');
writeFileSync(`${list}.${process.pid}.tmp`, `${JSON.stringify({ builtAt: new Date().toISOString(), inputs }, null, 1)}\n`);
renameSync(`${list}.${process.pid}.tmp`, list);
if (!quiet) process.stdout.write(`settle-bundle: dist/settle/settle.mjs from ${inputs.length} sources in ${Date.now() - started} ms\n`);
