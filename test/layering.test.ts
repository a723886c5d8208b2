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
    ['src/node/x.ts', "import { main } from '../cli/main.js';\nexport const x = main;\n", /src\/node and src\/api do not depend on src\/cli/],
    ['src/api/x.ts', "import { Client } from '../cli/client.js';\nexport const x = Client;\n", /src\/node and src\/api do not depend on src\/cli/],
  ])('rejects in %s: %j', async (file, code, message) => {
    expect((await lint(file, code)).join('\n')).toMatch(message);
  });

  it('allows the shell to do I/O', async () => {
    expect(await lint('src/gpu/x.ts', "import { readFileSync } from 'node:fs';\nexport const x = readFileSync;\n")).toEqual([]);
  });
});
