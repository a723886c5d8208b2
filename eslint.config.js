// Lint is part of `npm test`. Beyond style, it enforces the layering in DESIGN.md:
// the pure core (domain, scheduler) may not import anything that does I/O.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = [
  'fs', 'fs/*', 'node:*', 'child_process', 'net', 'http', 'https', 'os', 'path', 'process',
  'koffi', 'better-sqlite3', 'fastify', 'pino', 'worker_threads', 'dgram', 'tls', 'crypto',
];

/** Patterns that forbid reaching from a pure layer into the imperative shell. */
function shellImports(...layers) {
  return layers.map((layer) => `**/${layer}/**`);
}

/** A pure layer: no I/O modules, no shell layers, no clock, no randomness, no process. */
function pureLayer(dir, dependencyRule, forbiddenLayers) {
  const io = `${dir} is pure: no I/O imports.`;
  return {
    files: [`${dir}/**/*.ts`],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: ioModules.filter((m) => !m.includes('*')).map((name) => ({ name, message: io })),
        patterns: [
          { group: ['node:*', 'fs/*'], message: io },
          { group: shellImports(...forbiddenLayers), message: `${dir} ${dependencyRule}.` },
        ],
      }],
      'no-restricted-globals': ['error', 'process', 'fetch', 'setTimeout', 'setInterval'],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Pure code takes time as an argument.' },
        { object: 'Math', property: 'random', message: 'Pure code takes a seeded random source.' }],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'build/**', 'node_modules/**', 'coverage/**', 'web/dist/**', '.hw/**', '.carry/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
  pureLayer('src/domain', 'depends on nothing', ['gpu', 'node', 'api', 'cli', 'monitor', 'k8s', 'remote', 'scheduler']),
  pureLayer('src/scheduler', 'depends on src/domain only', ['gpu', 'node', 'api', 'cli', 'monitor', 'k8s', 'remote']),
  // The API contract is imported by the server and by every client: it must not drag the daemon in.
  pureLayer('src/contract', 'depends on src/domain only', ['gpu', 'node', 'api', 'cli', 'monitor', 'k8s', 'remote', 'scheduler']),
  // The daemon and its API never reach into the CLI (the CLI is one of their clients).
  {
    files: ['src/node/**/*.ts', 'src/api/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: shellImports('cli'), message: 'src/node and src/api do not depend on src/cli.' }] }],
    },
  },
);
