import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${REPO_ROOT}bin/gpushare.js`;

export interface CliResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built CLI as a user would, with a controlled environment. */
export function runCli(args: readonly string[], env: Record<string, string | undefined> = {}): CliResult {
  if (!existsSync(`${REPO_ROOT}dist/cli/main.js`)) throw new Error('dist/ is missing: run `npm run build` before the CLI tests');
  const clean = { ...process.env };
  for (const k of Object.keys(clean)) if (k.startsWith('GPUSHARE_')) delete clean[k];
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
