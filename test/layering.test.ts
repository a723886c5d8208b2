import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

/** The lint rules that keep the pure core pure (DESIGN.md "Dependencies point inward") must bite. */
describe('layering lint', () => {
  const eslint = new ESLint({ cwd: REPO_ROOT });
  const lint = async (file: string, code: string): Promise<string[]> => {
    const [result] = await eslint.lintText(code, { filePath: `${REPO_ROOT}${file}` });
    return (result?.messages ?? []).map((m) => m.message);
  };

  it.each([
    ['src/domain/x.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n", /src\/domain is pure/],
    ['src/domain/x.ts', "import { NvmlBackend } from '../gpu/nvml/backend.js';\nexport const x = NvmlBackend;\n", /src\/domain depends on nothing/],
    ['src/scheduler/x.ts', "import koffi from 'koffi';\nexport const x = koffi;\n", /src\/scheduler is pure/],
    ['src/scheduler/x.ts', "import { openBackend } from '../gpu/open.js';\nexport const x = openBackend;\n", /src\/scheduler depends on src\/domain only/],
    ['src/scheduler/x.ts', 'export const now = (): number => Date.now();\n', /Pure code takes time as an argument/],
    ['src/scheduler/x.ts', 'export const r = (): number => Math.random();\n', /seeded random source/],
    ['src/contract/x.ts', "import { Daemon } from '../node/daemon.js';\nexport const x = Daemon;\n", /src\/contract depends on src\/domain only/],
    ['src/contract/x.ts', "import { homedir } from 'node:os';\nexport const x = homedir;\n", /src\/contract is pure/],
    // import() too: no-restricted-imports does not see it (no-restricted-syntax does).
    ['src/domain/x.ts', "export const x = async (): Promise<unknown> => import('node:fs');\n", /src\/domain is pure/],
    ['src/domain/x.ts', "export const x = async (): Promise<unknown> => import('fs/promises');\n", /src\/domain is pure/],
    ['src/domain/x.ts', "export const x = async (): Promise<unknown> => import('../scheduler/index.js');\n", /src\/domain depends on nothing/],
    ['src/scheduler/x.ts', "export const x = async (): Promise<unknown> => import('better-sqlite3');\n", /src\/scheduler is pure/],
    ['src/scheduler/x.ts', "export const x = async (): Promise<unknown> => import('../gpu/open.js');\n", /src\/scheduler depends on src\/domain only/],
    ['src/contract/x.ts', "export const x = async (): Promise<unknown> => import('../node/daemon.js');\n", /src\/contract depends on src\/domain only/],
    ['src/contract/x.ts', "export const x = async (): Promise<unknown> => import('node:os');\n", /src\/contract is pure/],
    ['src/contract/x.ts', "export const x = async (m: string): Promise<unknown> => import(m);\n", /src\/contract loads no module it computes at run time/],
    ['src/node/x.ts', "import { main } from '../cli/main.js';\nexport const x = main;\n", /src\/node and src\/api do not depend on src\/cli/],
    ['src/api/x.ts', "import { Client } from '../cli/client.js';\nexport const x = Client;\n", /src\/node and src\/api do not depend on src\/cli/],
    // The dashboard is a client of the API: the contract's types, nothing else of src/.
    ['web/src/x.ts', "import type { Daemon } from '../../src/node/daemon';\nexport type X = Daemon;\n", /web\/ imports only src\/contract/],
    ['web/src/views/x.tsx', "import { SampleHub } from '../../../src/monitor/hub';\nexport const x = SampleHub;\n", /web\/ imports only src\/contract/],
  ])('rejects in %s: %j', async (file, code, message) => {
    expect((await lint(file, code)).join('\n')).toMatch(message);
  });

  // The CLI is a client of the daemon's API: the contract, the domain and its own code only.
  const cli = /src\/cli imports only src\/contract, src\/domain and its own code/;
  it.each([
    ['src/cli/commands/x.ts', "import { Daemon } from '../../node/daemon.js';\nexport const x = Daemon;\n"],
    ['src/cli/commands/x.ts', "import type { ApiApp } from '../../api/server.js';\nexport type X = ApiApp;\n"],
    ['src/cli/commands/x.ts', "export { defaultPaths } from '../../node/paths.js';\n"],
    ['src/cli/commands/x.ts', "export const x = async (): Promise<unknown> => import('../../node/config.js');\n"],
    ['src/cli/x.ts', "import { openBackend } from '../gpu/open.js';\nexport const x = openBackend;\n"],
    ['src/cli/x.ts', "import { schedule } from '../scheduler/index.js';\nexport const x = schedule;\n"],
    ['src/cli/commands/serve.ts', "import { serve } from '../../app/serve.js';\nexport const x = serve;\n"],
    ['src/cli/commands/serve.ts', "export const x = async (): Promise<unknown> => import('../../node/config.js');\n"],
    ['src/cli/commands/simulate.ts', "import { openBackend } from '../../gpu/open.js';\nexport const x = openBackend;\n"],
    ['src/cli/options.ts', "export const x = async (): Promise<unknown> => import('../node/daemon.js');\n"],
  ])('rejects in %s: %j', async (file, code) => {
    expect((await lint(file, code)).join('\n')).toMatch(cli);
  });

  it.each([
    ['the contract and the domain', 'src/cli/commands/x.ts', "import { defaultSocketPath } from '../../contract/paths.js';\nimport { formatBytes } from '../../domain/index.js';\nexport const x = [defaultSocketPath, formatBytes];\n"],
    ['its own code, npm packages and Node', 'src/cli/commands/x.ts', "import { Command } from 'commander';\nimport { userInfo } from 'node:os';\nimport { renderTable } from '../output/table.js';\nexport const x = [Command, userInfo, renderTable, (): Promise<unknown> => import('./run.js')];\n"],
    ['gpus --local: options.ts opens a backend', 'src/cli/options.ts', "import type { OpenedBackend } from '../gpu/open.js';\nexport const x = async (): Promise<OpenedBackend> => (await import('../gpu/open.js')).openBackend({});\n"],
    ['simulate: the scheduler', 'src/cli/commands/simulate-run.ts', "import { replay } from '../../scheduler/sim/replay.js';\nexport const x = replay;\n"],
    ['serve: the composition root, with import()', 'src/cli/commands/serve.ts', "export const x = async (): Promise<unknown> => import('../../app/serve.js');\n"],
  ])('allows %s', async (_name, file, code) => {
    expect(await lint(file, code)).toEqual([]);
  });

  it('allows a pure layer to load another pure module with import()', async () => {
    expect(await lint('src/scheduler/x.ts', "export const x = async (): Promise<unknown> => import('../domain/index.js');\n")).toEqual([]);
  });

  it('allows the shell to do I/O', async () => {
    expect(await lint('src/gpu/x.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toEqual([]);
  });
});
