import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = path.dirname(fileURLToPath(import.meta.url));
const lib = (name: string) => path.join(root, 'libs', name, 'src', 'index.ts');

export default defineConfig({
  resolve: {
    alias: {
      '@settlement/domain': lib('domain'),
      '@settlement/config': lib('config'),
      '@settlement/scylla': lib('scylla'),
      '@settlement/runtime': lib('runtime'),
      '@settlement/testing': path.join(root, 'tools', 'testing', 'index.ts'),
      '@settlement/tools': path.join(root, 'tools', 'index.ts'),
      '@settlement/simulator': path.join(root, 'apps', 'simulator', 'src', 'index.ts'),
      '@settlement/settler': path.join(root, 'apps', 'settler', 'src', 'index.ts'),
      '@settlement/ingestor': path.join(root, 'apps', 'ingestor', 'src', 'index.ts'),
      '@settlement/reconciler': path.join(root, 'apps', 'reconciler', 'src', 'index.ts'),
      '@settlement/dashboard': path.join(root, 'apps', 'dashboard', 'src', 'index.ts'),
    },
  },
  test: {
    include: ['**/*.test.ts'],
    exclude: ['**/node_modules/**', 'dist/**', 'data/**'],
    globalSetup: [path.join(root, 'tools', 'testing', 'global-setup.ts')],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores share Cassandra, Redis and the test processes; more files at once only thrash.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
