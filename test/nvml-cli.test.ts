import { describe, expect, it } from 'vitest';
import { runCli } from './helpers/cli.js';
import { fakeNvmlEnv, loadFixture } from './helpers/fake-nvml.js';

/** `gpushare gpus --json` end to end: the built CLI, koffi, and the fake NVML in C. */
describe('gpushare gpus against the fake NVML', () => {
  const gpusJson = (description: unknown, extra: string[] = []) => {
    const r = runCli(['gpus', '--json', '--backend', 'nvml', ...extra], fakeNvmlEnv(description));
    return { ...r, gpus: r.status === 0 ? (JSON.parse(r.stdout) as Array<Record<string, unknown>>) : [] };
  };

  it('returns exactly the described devices, processes and MIG instances', () => {
    const { status, stderr, gpus } = gpusJson(loadFixture('fake-nvml-2gpu.json'));
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(gpus).toHaveLength(2);
    expect(gpus[0]).toMatchObject({
      index: 0, uuid: 'GPU-11111111-2222-3333-4444-555555555555', name: 'NVIDIA H100 80GB HBM3', model: 'H100-80GB', health: 'ok',
      memoryTotalBytes: 85520809984, memoryUsedBytes: 2148532224, memoryReservedBytes: 567279616,
      utilizationGpu: 0.37, utilizationMemory: 0.12, temperatureC: 41, powerDrawWatts: 171.234, powerLimitWatts: 700,
      clockSmMHz: 1755, clockMemoryMHz: 2619, maxClockSmMHz: 1980, maxClockMemoryMHz: 2619,
      pciBusId: '00000000:19:00.0', numaNode: 0, computeCapability: '9.0', multiprocessorCount: 132,
      migMode: 'disabled', migDevices: [], eccErrors: { corrected: 3, uncorrected: 0 },
      clockEventReasons: ['gpu_idle', 'sw_power_cap'],
      // mJ to J; the fake has no event API, so XIDs are not watched: null, not 0.
      energyJoules: 123456.789, pcieReplays: 7, xidErrors: null, lastXid: null,
      topology: [{ gpu: 1, level: 'NV', nvlinks: 2 }],
    });
    expect(gpus[0]!['processes']).toEqual([
      { pid: 4242, memoryBytes: 1048576000, gpuInstanceId: null, computeInstanceId: null },
      { pid: 4343, memoryBytes: 1073741824, gpuInstanceId: null, computeInstanceId: null },
    ]);
    expect(gpus[1]).toMatchObject({
      index: 1, model: 'A100-40GB', numaNode: null, computeCapability: '8.0', migMode: 'enabled',
      eccErrors: null, clockEventReasons: ['gpu_idle'], energyJoules: null, pcieReplays: null, topology: [{ gpu: 0, level: 'NV', nvlinks: 2 }],
    });
    expect(gpus[1]!['migDevices']).toEqual([
      { index: 0, uuid: 'MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee', name: 'NVIDIA A100-SXM4-40GB MIG 3g.20gb', profile: '3g.20gb', gpuInstanceId: 2, computeInstanceId: 0, memoryTotalBytes: 20937965568, memoryUsedBytes: 13000000, multiprocessorCount: 42 },
      { index: 1, uuid: 'MIG-ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee', name: 'NVIDIA A100-SXM4-40GB MIG 1g.5gb', profile: '1g.5gb', gpuInstanceId: 9, computeInstanceId: 0, memoryTotalBytes: 5100273664, memoryUsedBytes: 0, multiprocessorCount: 14 },
    ]);
    expect(gpus[1]!['processes']).toEqual([{ pid: 5151, memoryBytes: 10000000000, gpuInstanceId: 2, computeInstanceId: 0 }]);
  });

  it('uses the PCIe level when no NVLink joins two GPUs', () => {
    const d = loadFixture('fake-nvml-2gpu.json');
    d.devices.forEach((dev) => delete dev['nvlinks']);
    expect(gpusJson(d).gpus[0]!['topology']).toEqual([{ gpu: 1, level: 'NODE', nvlinks: 0 }]);
  });

  it('retries the process list when processes start between the size query and the fill', () => {
    const d = loadFixture('fake-nvml-2gpu.json');
    d.devices[0]!['processesGrowBy'] = 3;
    const { status, gpus } = gpusJson(d);
    expect(status).toBe(0);
    expect((gpus[0]!['processes'] as unknown[]).length).toBe(5);
  });

  it('lists a GPU that fell off the bus as lost and keeps the others', () => {
    const d = loadFixture('fake-nvml-2gpu.json');
    d.devices[1]!['lost'] = true;
    const { status, gpus } = gpusJson(d);
    expect(status).toBe(0);
    expect(gpus[0]).toMatchObject({ health: 'ok', model: 'H100-80GB' });
    expect(gpus[1]).toMatchObject({ index: 1, health: 'lost', memoryTotalBytes: 0 });
    const table = runCli(['gpus', '--backend', 'nvml'], fakeNvmlEnv(d));
    expect(table.stdout).toMatch(/^1\s+LOST/m);
  });

  it('reports unsupported fields as null instead of failing', () => {
    const d = loadFixture('fake-nvml-2gpu.json');
    d.devices[0]!['errors'] = { nvmlDeviceGetPowerUsage: 3, nvmlDeviceGetTemperature: 4, nvmlDeviceGetUtilizationRates: 3 };
    const { status, gpus } = gpusJson(d);
    expect(status).toBe(0);
    expect(gpus[0]).toMatchObject({ powerDrawWatts: null, temperatureC: null, utilizationGpu: null, utilizationMemory: null, powerLimitWatts: 700 });
  });

  it('fails with the NVML function and message on an unexpected NVML error', () => {
    const d = loadFixture('fake-nvml-2gpu.json');
    d.devices[0]!['errors'] = { nvmlDeviceGetClockInfo: 999 };
    const r = runCli(['gpus', '--json', '--backend', 'nvml'], fakeNvmlEnv(d));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^gpushare: nvmlDeviceGetClockInfo failed: Unknown Error \(NVML error 999\) \[GS_ERR_NVML_CALL\]$/m);
    expect(r.stdout).toBe('');
  });

  it('says the driver is not loaded, and falls back to simulated GPUs under auto', () => {
    const env = fakeNvmlEnv({ driverLoaded: false, devices: [] });
    const strict = runCli(['gpus', '--backend', 'nvml'], env);
    expect(strict.status).toBe(1);
    expect(strict.stderr).toMatch(/failed to initialise: Driver Not Loaded \(is the NVIDIA kernel driver installed and loaded\?\) \[GS_ERR_NVML_UNAVAILABLE\]/);
    const auto = runCli(['gpus', '--json'], env);
    expect(auto.status).toBe(0);
    expect(auto.stderr).toMatch(/SIMULATED GPUs/);
    expect((JSON.parse(auto.stdout) as Array<{ model: string }>)[0]!.model).toBe('H100-80GB');
  });

  it('reports driver, CUDA and NVML versions', () => {
    const r = runCli(['info', '--backend', 'nvml'], fakeNvmlEnv(loadFixture('fake-nvml-2gpu.json')));
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/Driver:\s+580\.95\.05\s+CUDA: 13\.0\s+NVML: 13\.580\.95\.05/);
    expect(r.stdout).toMatch(/1\/0\s+MIG 3g\.20gb/);
  });

  it('shows memory in the table in binary units', () => {
    const r = runCli(['gpus', '--backend', 'nvml'], fakeNvmlEnv(loadFixture('fake-nvml-2gpu.json')));
    expect(r.stdout).toContain(`2 GiB / ${(85520809984 / 2 ** 30).toFixed(1)} GiB`);
  });
});
