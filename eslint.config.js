// Lint is part of `npm test`. Beyond style, it enforces the layering in DESIGN.md:
// the pure core (domain, scheduler, contract) may not import anything that does I/O.
import { readdirSync } from 'node:fs';
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

/** `ioModules` as a selector's regular expression over a module specifier (for import()). */
const ioPattern = `/^(${ioModules.map((m) => m.replace('/', '[/]').replace('*', '.*')).join('|')})$/`;

/** A selector's regular expression matching a specifier that reaches into one of `layers`. */
function layerPattern(layers) {
  return `/(^|[/])(${layers.join('|')})[/]/`;
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
      // no-restricted-imports does not look at import(): the same rules again for it, and an
      // import() whose module is computed cannot be checked, so a pure layer has none.
      'no-restricted-syntax': ['error',
        { selector: `ImportExpression[source.value=${ioPattern}]`, message: io },
        { selector: `ImportExpression[source.value=${layerPattern(forbiddenLayers)}]`, message: `${dir} ${dependencyRule}.` },
        { selector: "ImportExpression:not([source.type='Literal'])", message: `${dir} loads no module it computes at run time (import() of a fixed path only).` }],
      'no-restricted-globals': ['error', 'process', 'fetch', 'setTimeout', 'setInterval'],
      'no-restricted-properties': ['error',
        { object: 'Date', property: 'now', message: 'Pure code takes time as an argument.' },
        { object: 'Math', property: 'random', message: 'Pure code takes a seeded random source.' }],
    },
  };
}

/**
 * The CLI talks to the daemon through the API contract: it imports src/contract, src/domain and
 * its own code (npm packages and Node's modules aside), nothing else of src/. Every other layer
 * under src/ (today's and any added later) is forbidden, statically (`import`, `import type`,
 * `export ... from`) and dynamically (`import()`), except where `allowed` names a layer for
 * one of the exceptions below.
 */
const cliLayers = readdirSync(new URL('./src/', import.meta.url), { withFileTypes: true })
  .filter((e) => e.isDirectory() && !['cli', 'contract', 'domain'].includes(e.name))
  .map((e) => e.name);
const cliMessage = 'src/cli imports only src/contract, src/domain and its own code (exceptions: eslint.config.js).';

/** The CLI rule for `files`; `allowed`: layers these files may import, `dynamicOnly`: layers they may import only with `import()`. */
function cliRule(files, { allowed = [], dynamicOnly = [] } = {}) {
  const staticForbidden = cliLayers.filter((l) => !allowed.includes(l));
  const dynamicForbidden = staticForbidden.filter((l) => !dynamicOnly.includes(l));
  const config = {
    files,
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: shellImports(...staticForbidden), message: cliMessage }] }],
    },
  };
  if (dynamicForbidden.length > 0) {
    // no-restricted-imports does not look at import(): the CLI loads most of its code that way.
    config.rules['no-restricted-syntax'] = ['error', { selector: `ImportExpression[source.value=${layerPattern(dynamicForbidden)}]`, message: cliMessage }];
  }
  return config;
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
  cliRule(['src/cli/**/*.ts']),
  // The dashboard (web/) talks to the daemon through the API: of src/ it imports the contract's types only.
  {
    files: ['web/**/*.ts', 'web/**/*.tsx'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '(^|/)src/(?!contract/)', message: 'web/ imports only src/contract (types) of src/: it talks to the daemon through the API.' }] }],
    },
  },
  // Exceptions, each for a command that by its nature is not a client of the daemon:
  // `gpus --local` and `info` read this machine's GPUs with no daemon at all; options.ts opens
  // the backend for them (and lists the backend choices `serve` offers).
  cliRule(['src/cli/options.ts'], { allowed: ['gpu'] }),
  // `simulate` replays a trace through the scheduler in-process: the scheduler is what it tests.
  cliRule(['src/cli/commands/simulate.ts', 'src/cli/commands/simulate-run.ts'], { allowed: ['scheduler'] }),
  // `serve` is the daemon: it loads the composition root (src/app), and only with import(), so
  // that no other command loads the daemon's side.
  cliRule(['src/cli/commands/serve.ts'], { dynamicOnly: ['app'] }),
  // `k8s` runs the Kubernetes components (they are not the daemon's clients): src/k8s, only
  // with import(), as `serve` loads the daemon.
  cliRule(['src/cli/commands/k8s.ts'], { dynamicOnly: ['k8s'] }),
);
