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
    expect(r.stderr).toMatch(/^Backend: simulated GPUs/m);
    // stdout is the table alone, for awk and friends.
    expect(r.stdout).toMatch(/^GPU\s+MODEL\s+UUID/);
    expect(r.stdout).toMatch(/0\s+H100-80GB\s+GPU-/);
  });

  it('prints GPUs in the asked form: -o wide, --no-headers, -o name, -o yaml, --format', () => {
    const sim = ['--simulate', '2xH100-80GB'];
    const wide = runCli(['gpus', '-o', 'wide', ...sim]);
    expect(wide.status).toBe(0);
    expect(wide.stdout).toMatch(/^GPU\s+MODEL\s+UUID\s+MEMORY\s+UTIL\s+TEMP\s+POWER\s+MIG\s+PROCS\s+PCI BUS\s+NUMA\s+CC$/m);
    const bare = runCli(['gpus', '--no-headers', ...sim]);
    expect(bare.stdout.split('\n').filter((l) => l !== '')).toHaveLength(2);
    expect(bare.stdout).not.toMatch(/MODEL/);
    expect(runCli(['gpus', '-o', 'name', ...sim]).stdout).toMatch(/^gpu\/GPU-[0-9a-f-]+\ngpu\/GPU-[0-9a-f-]+\n$/);
    expect(runCli(['gpus', '-o', 'yaml', ...sim]).stdout).toMatch(/^- index: 0\n {2}uuid: GPU-/);
    expect(runCli(['gpus', '--format', '{{.Index}} {{.Model}} {{json .MigMode}}', ...sim]).stdout).toBe('0 H100-80GB "disabled"\n1 H100-80GB "disabled"\n');
    const table = runCli(['gpus', '--format', 'table {{.Index}}\\t{{.MemoryTotalBytes}}', ...sim]).stdout;
    expect(table).toMatch(/^INDEX {2}MEMORY TOTAL BYTES\n0 {6}85520809984\n1 {6}85520809984\n$/);
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
    [['gpus', '-o', 'xml'], /Allowed choices are json, yaml, wide, name/],
    [['gpus', '--json', '-o', 'yaml'], /--json is -o json; it cannot be combined with -o yaml/],
    [['gpus', '--format', '{{.Index}}', '-o', 'json'], /--format prints through a template; it cannot be combined with -o json/],
    [['gpus', '--format', '{{range .}}'], /"\{\{range \.\}\}" is not something --format knows/],
    [['gpus', '--format', '{{.Nope}}'], /--format: no field "Nope"; the fields are index, uuid, /],
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
