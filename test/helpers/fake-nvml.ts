import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

/** The fake libnvidia-ml.so.1 built by `npm run build` (native/testing). */
export const FAKE_NVML_PATH = `${REPO_ROOT}build/native/fake/libnvidia-ml.so.1`;

export function requireFakeNvml(): string {
  if (!existsSync(FAKE_NVML_PATH)) throw new Error(`${FAKE_NVML_PATH} is missing: run \`npm run build\` first`);
  return FAKE_NVML_PATH;
}

/** A fixture from test/fixtures, parsed, so a test can tweak it before handing it to the fake. */
export function loadFixture(name: string): Record<string, unknown> & { devices: Array<Record<string, unknown>> } {
  return JSON.parse(readFileSync(`${REPO_ROOT}test/fixtures/${name}`, 'utf8')) as Record<string, unknown> & { devices: Array<Record<string, unknown>> };
}

/** Writes a description to a temporary file and returns the environment that points the fake at it. */
export function fakeNvmlEnv(description: unknown): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-fake-nvml-'));
  const file = join(dir, 'nvml.json');
  writeFileSync(file, JSON.stringify(description));
  return { GPUSHARE_NVML_PATH: requireFakeNvml(), GPUSHARE_FAKE_NVML: file };
}
