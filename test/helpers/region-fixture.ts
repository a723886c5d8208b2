/**
 * region_fixture (native/region tests): processes that allocate in one region file and stay
 * attached until their stdin closes. Shared by the tests that sample a real region.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { expect } from 'vitest';
import { regionTool } from '../../src/gpu/region/native.js';

/** Runs body while the fixture holds the region at path; the fixture must then exit 0. */
export async function withRegionFixture<T>(path: string, body: () => Promise<T>): Promise<T> {
  const proc = spawn(regionTool('region_fixture'), [path], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  try {
    await new Promise<string>((resolve, reject) => {
      createInterface({ input: proc.stdout }).once('line', resolve);
      proc.once('exit', (code) => reject(new Error(`region_fixture exited ${code} before it was ready`)));
    });
    return await body();
  } finally {
    proc.stdin.end('\n');
    expect(await exited).toBe(0);
  }
}
