#!/usr/bin/env node
// `settle` without a build step: registers tsx with the repository's tsconfig (for the
// @settlement/* path aliases) and runs the TypeScript CLI. `npx settle --help`.
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
register({ tsconfig: path.join(root, 'tsconfig.base.json') });
await import(pathToFileURL(path.join(root, 'apps/dashboard/src/cli/main.ts')).href);
