#!/usr/bin/env node
// `settle`: runs the bundle dist/settle/settle.mjs (built by `npm ci` / `npm install` through the
// `prepare` script, tools/build/settle-bundle.mjs), which starts in plain Node in a fraction of
// a second. When a source file the bundle was built from is newer than it (someone edited the
// CLI), the bundle is rebuilt first; without esbuild, or with SETTLE_FROM_SOURCE=1, the
// TypeScript CLI runs through tsx (with the repository's tsconfig for the @settlement/* aliases),
// as before: correct, but ~5 s per call.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const bundle = path.join(root, 'dist', 'settle', 'settle.mjs');
const inputsFile = path.join(root, 'dist', 'settle', 'inputs.json');

/** The bundle exists and no source it was built from changed since (one stat per source, ~70). */
function bundleIsFresh() {
  if (!existsSync(bundle) || !existsSync(inputsFile)) return false;
  try {
    const builtMs = statSync(bundle).mtimeMs;
    const { inputs } = JSON.parse(readFileSync(inputsFile, 'utf8'));
    return inputs.every((input) => {
      const file = path.join(root, input);
      return existsSync(file) && statSync(file).mtimeMs <= builtMs;
    });
  } catch {
    return false;
  }
}

function rebuild() {
  const built = spawnSync(process.execPath, [path.join(root, 'tools', 'build', 'settle-bundle.mjs'), '--quiet'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  return built.status === 0 && existsSync(bundle);
}

if (process.env.SETTLE_FROM_SOURCE !== '1' && (bundleIsFresh() || (existsSync(path.join(root, 'tools', 'build', 'settle-bundle.mjs')) && rebuild()))) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: path.join(root, 'tsconfig.base.json') });
  await import(pathToFileURL(path.join(root, 'apps', 'dashboard', 'src', 'cli', 'main.ts')).href);
}
