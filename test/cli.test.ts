import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';

/** Keep the CLI off any real or fake NVML unless a test asks for one. */
const NO_NVML = { GPUSHARE_NVML_PATH: '/nonexistent/libnvidia-ml.so.1' };

describe('gpushare CLI', () => {
  it('prints its version', () => {
    const r = runCli(['--version']);
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it.each([[[]], [['--help']], [['gpus', '--help']], [['info', '--help']]])('has help: %j', (args) => {
    const r = runCli([...args, ...(args.length === 0 ? ['--help'] : [])]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Usage: gpushare/);
  });

  it('falls back to simulated GPUs without a driver, and says so on stderr', () => {
    const r = runCli(['gpus'], NO_NVML);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/No NVIDIA driver found .*SIMULATED GPUs \(1xH100-80GB\)/);
    expect(r.stdout).toMatch(/^Backend: simulated GPUs/m);
    expect(r.stdout).toMatch(/0\s+H100-80GB\s+GPU-/);
  });

  it('prints the described simulated fleet as JSON', () => {
    const r = runCli(['gpus', '--json', '--simulate', '2xH100-80GB,1xA100-40GB']);
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
    const gpus = JSON.parse(r.stdout) as Array<Record<string, unknown>>;
    expect(gpus.map((g) => [g['index'], g['model'], g['memoryTotalBytes']])).toEqual([
      [0, 'H100-80GB', 81559 * 2 ** 20],
      [1, 'H100-80GB', 81559 * 2 ** 20],
      [2, 'A100-40GB', 40960 * 2 ** 20],
    ]);
    for (const g of gpus) {
      for (const key of ['uuid', 'name', 'memoryUsedBytes', 'utilizationGpu', 'migMode', 'migDevices', 'processes']) expect(g).toHaveProperty(key);
    }
  });

  it('takes the fleet from the environment', () => {
    const r = runCli(['gpus', '--json'], { GPUSHARE_SIMULATE: '3xT4' });
    expect((JSON.parse(r.stdout) as unknown[]).length).toBe(3);
  });

  it.each([
    [['gpus', '--simulate', '2xB900'], /unknown GPU model "B900"; known models: /],
    [['gpus', '--backend', 'cuda'], /Allowed choices are auto, nvml, simulated/],
    [['gpus', '--backend', 'nvml', '--simulate', '1xT4'], /cannot be combined with --backend nvml/],
    [['gpus', '--watch', '0'], /expected seconds from 0.1 to 3600/],
    [['gpus', '--frobnicate'], /unknown option '--frobnicate'/],
    [['frobnicate'], /unknown command 'frobnicate'/],
  ])('rejects bad input with one clear line and exit 2: %j', (args, message) => {
    const r = runCli(args, NO_NVML);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('fails with exit 1 when NVML is required but missing', () => {
    const r = runCli(['gpus', '--backend', 'nvml'], NO_NVML);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^gpushare: cannot load NVML from \/nonexistent\/libnvidia-ml.so.1: .* \[GS_ERR_NVML_UNAVAILABLE\]$/m);
  });

  it('info says plainly that GPUs are simulated', () => {
    const r = runCli(['info'], NO_NVML);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Backend:\s+SIMULATED/);
    expect(r.stdout).toMatch(/Next:/);
  });
});
