import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

export default [
  { ignores: ['**/node_modules/**', '**/dist/**', 'data/**', '.nx/**', 'bench/results/**', 'docs/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: ['@settlement/testing'],
          // Library tests use the test harness in tools/, which uses the libraries.
          ignoredCircularDependencies: [['tools', 'scylla'], ['tools', 'config'], ['tools', 'domain'], ['tools', 'runtime']],
          depConstraints: [
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:data-access', 'type:domain', 'type:util'] },
            { sourceTag: 'type:data-access', onlyDependOnLibsWithTags: ['type:domain', 'type:util'] },
            { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:domain', 'type:util'] },
            { sourceTag: 'type:domain', onlyDependOnLibsWithTags: [] },
          ],
        },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Tests, benchmarks and tooling drive whole apps (start a settler, feed a simulator);
    // production code of one app never imports another.
    files: ['**/*.test.ts', '**/test/**/*.ts', '**/perf/**/*.ts', 'bench/**/*.ts', 'tools/**/*.ts'],
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: ['@settlement/testing', '@settlement/tools', '@settlement/simulator', '@settlement/settler', '@settlement/ingestor', '@settlement/reconciler', '@settlement/dashboard'],
          ignoredCircularDependencies: [['tools', 'scylla'], ['tools', 'config'], ['tools', 'domain'], ['tools', 'runtime']],
          depConstraints: [{ sourceTag: '*', onlyDependOnLibsWithTags: ['*'] }],
        },
      ],
    },
  },
  {
    // The domain is pure: no I/O library may enter it.
    files: ['libs/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['cassandra-driver', 'bullmq', 'ioredis', 'zeromq', 'pino', 'node:fs', 'node:net', 'node:http', 'fs', 'net', 'http', 'express', 'prom-client'].map(
            (name) => ({ name, message: 'libs/domain is pure: do I/O in an app or in libs/scylla' }),
          ),
        },
      ],
    },
  },
];
