import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { findOnPath, MpsControl } from './mps.js';

const root = mkdtempSync(join(tmpdir(), 'gpushare-mps-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const logger = pino({ level: 'silent' });

/** A fake nvidia-cuda-mps-control in its own bin directory; `startExit` is what `-d` exits with. */
function fake(name: string, startExit = 0): { path: string; log: string } {
  const bin = join(root, name, 'bin');
  mkdirSync(bin, { recursive: true });
  const log = join(root, name, 'calls.log');
  writeFileSync(
    join(bin, 'nvidia-cuda-mps-control'),
    `#!/bin/sh
if [ "$1" = "-d" ]; then
  echo "-d $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY" >> "${log}"
  [ ${startExit} = 0 ] || { echo "An instance of this daemon is already running" >&2; exit ${startExit}; }
  : > "$CUDA_MPS_PIPE_DIRECTORY/control"; exit 0
fi
read cmd; echo "$cmd" >> "${log}"
[ "$cmd" = quit ] && rm -f "$CUDA_MPS_PIPE_DIRECTORY/control" && exit 0
[ "$cmd" = get_server_list ] && [ -e "$CUDA_MPS_PIPE_DIRECTORY/control" ] && exit 0
exit 1
`,
  );
  chmodSync(join(bin, 'nvidia-cuda-mps-control'), 0o755);
  return { path: `${bin}:/usr/bin:/bin`, log };
}
const calls = (log: string): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

describe('MpsControl', () => {
  it('auto on real GPUs: starts at the first ensure with private directories, once, and quits only when no client is left', () => {
    const f = fake('auto');
    const dir = join(root, 'auto', 'state', 'mps');
    const mps = new MpsControl({ mode: 'auto', backendKind: 'nvml', dir, env: { PATH: f.path }, logger });
    expect(mps.status()).toMatchObject({ available: true, running: false, problem: null });
    expect(calls(f.log)).toEqual([]); // nothing until a partition needs it
    expect(mps.ensure()).toEqual({ pipeDir: join(dir, 'pipe'), problem: null });
    expect(mps.ensure().pipeDir).toBe(join(dir, 'pipe'));
    expect(calls(f.log)).toEqual([`-d ${join(dir, 'pipe')} ${join(dir, 'log')}`]);
    mps.stop(2);
    expect(calls(f.log)).toHaveLength(1);
    mps.stop(0);
    expect(calls(f.log).at(-1)).toBe('quit');
    expect(mps.status().running).toBe(false);
  });

  it('auto on simulated GPUs, or off: never starts it', () => {
    const f = fake('sim');
    for (const [mode, kind, why] of [
      ['auto', 'simulated', /the simulated backend has no MPS/],
      ['off', 'nvml', /MPS is off/],
    ] as const) {
      const mps = new MpsControl({ mode, backendKind: kind, dir: join(root, 'sim', mode), env: { PATH: f.path }, logger });
      const r = mps.ensure();
      expect(r.pipeDir).toBeNull();
      expect(r.problem).toMatch(why);
    }
    expect(calls(f.log)).toEqual([]);
  });

  it('reports a start that fails with its exit status and stderr', () => {
    const f = fake('fails', 3);
    const mps = new MpsControl({ mode: 'on', backendKind: 'nvml', dir: join(root, 'fails', 'mps'), env: { PATH: f.path }, logger });
    const r = mps.ensure();
    expect(r.pipeDir).toBeNull();
    expect(r.problem).toMatch(/nvidia-cuda-mps-control -d failed \(exit 3: An instance of this daemon is already running\)/);
    expect(mps.status()).toMatchObject({ running: false, available: true });
  });

  it('mps on without the binary is an error naming the PATH searched; auto is only unavailable', () => {
    const env = { PATH: join(root, 'nowhere') };
    expect(() => new MpsControl({ mode: 'on', backendKind: 'nvml', dir: join(root, 'x'), env, logger })).toThrow(/mps: on, but nvidia-cuda-mps-control is not on PATH \(.*nowhere\)/);
    const auto = new MpsControl({ mode: 'auto', backendKind: 'nvml', dir: join(root, 'x'), env, logger });
    expect(auto.status()).toMatchObject({ available: false, problem: expect.stringMatching(/not on PATH/) });
  });

  it('finds the first executable on PATH', () => {
    const f = fake('find');
    expect(findOnPath('nvidia-cuda-mps-control', `/nonexistent:${f.path}`)).toBe(join(root, 'find', 'bin', 'nvidia-cuda-mps-control'));
    expect(findOnPath('nvidia-cuda-mps-control', '')).toBeNull();
    expect(findOnPath('nvidia-cuda-mps-control', undefined)).toBeNull();
  });
});
