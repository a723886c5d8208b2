import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The modules (ESM loader URLs) the built CLI loads for these arguments. */
function modulesLoaded(args: readonly string[], name: string): string[] {
  const log = join(dir, `${name}.log`);
  const env: NodeJS.ProcessEnv = { ...process.env, GPUSHARE_TEST_MODULE_LOG: log, GPUSHARE_HOST: join(dir, 'no-daemon.sock') };
  delete env['GPUSHARE_TEST_MODULE_LOG_REGISTERED'];
  const r = spawnSync(process.execPath, ['--import', `${REPO_ROOT}test/helpers/module-log-hooks.mjs`, `${REPO_ROOT}bin/gpushare.js`, ...args], { env, encoding: 'utf8', timeout: 20_000 });
  expect(r.error).toBeUndefined();
  return readFileSync(log, 'utf8').split('\n').filter((u) => u !== '');
}

// What only some commands need: GPU backends (koffi), the scheduler and simulator, the daemon.
const HEAVY = [/\/node_modules\/koffi\//, /\/dist\/gpu\/(nvml|simulated)\//, /\/dist\/gpu\/open\.js$/, /\/dist\/scheduler\/(?!policy-names\.js$)/, /\/dist\/node\/(daemon|config)\.js$/, /\/dist\/app\//, /\/node_modules\/(fastify|pino|better-sqlite3|zod)\//];

describe('CLI start-up loads only what the command needs', () => {
  it.each([
    ['--version', ['--version']],
    ['--help', ['--help']],
    ['run --help', ['run', '--help']],
    ['run (daemon unreachable)', ['run', '--gpus', '0', '--', 'true']],
  ] as const)('%s', (name, args) => {
    const loaded = modulesLoaded(args, name.replace(/\W+/g, '-'));
    expect(loaded.some((u) => u.endsWith('/dist/cli/main.js'))).toBe(true);
    expect(loaded.filter((u) => HEAVY.some((re) => re.test(u)))).toEqual([]);
  });

  it('gpushare run loads no other command\'s module, and --version none at all', () => {
    const commandModules = (loaded: string[]): string[] =>
      loaded.map((u) => /\/dist\/cli\/commands\/([\w-]+)\.js$/.exec(u)?.[1]).filter((m): m is string => m !== undefined).sort();
    // submit.ts: run's submission, shared with `remote open` (which run --remote loads only then)
    expect(commandModules(modulesLoaded(['run', '--gpus', '0', '--', 'true'], 'run-only'))).toEqual(['index', 'run', 'submit', 'tasks-common']);
    expect(commandModules(modulesLoaded(['--version'], 'version-only'))).toEqual(['index']);
    expect(commandModules(modulesLoaded(['--help'], 'help-all'))).toContain('simulate');
  });

  it('still loads the backend for a command that reads GPUs (the check above can see it)', () => {
    const loaded = modulesLoaded(['gpus', '--json', '--simulate', '1xH100-80GB'], 'gpus');
    expect(loaded.some((u) => u.endsWith('/dist/gpu/open.js'))).toBe(true);
  });
});
