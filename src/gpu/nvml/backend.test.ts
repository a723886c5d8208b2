import { afterEach, describe, expect, it } from 'vitest';
import { fakeNvmlEnv, loadFixture, requireFakeNvml } from '../../../test/helpers/fake-nvml.js';
import type { GsError } from '../../domain/index.js';
import { describeBackendConformance } from '../backend.case.js';
import { NvmlBackend, sysfsPciName } from './backend.js';

/**
 * The koffi binding in-process against the fake NVML. The fake reads its description at
 * nvmlInit, so each backend opened here sees the environment set just before.
 */
function openFake(description: unknown, readSysfs?: (p: string) => string | null): NvmlBackend {
  const env = fakeNvmlEnv(description);
  process.env['GPUSHARE_FAKE_NVML'] = env['GPUSHARE_FAKE_NVML'];
  return new NvmlBackend({ path: requireFakeNvml(), ...(readSysfs ? { readSysfs } : {}) });
}

afterEach(() => {
  delete process.env['GPUSHARE_FAKE_NVML'];
});

describeBackendConformance('nvml (fake libnvidia-ml)', () => ({ backend: openFake(loadFixture('fake-nvml-2gpu.json')), expectedCount: 2 }));

describe('NvmlBackend', () => {
  it('describes the driver it reads', () => {
    const b = openFake(loadFixture('fake-nvml-2gpu.json'));
    try {
      expect(b.description).toMatch(/^NVML 13\.580\.95\.05 \(driver 580\.95\.05, CUDA 13\.0\) from .*libnvidia-ml\.so\.1$/);
      expect(b.system()).toEqual({ backend: 'nvml', driverVersion: '580.95.05', cudaDriverVersion: '13.0', nvmlVersion: '13.580.95.05' });
    } finally {
      b.close();
    }
  });

  it('falls back to sysfs for the NUMA node when NVML does not know it', () => {
    const asked: string[] = [];
    const b = openFake(loadFixture('fake-nvml-2gpu.json'), (p) => {
      asked.push(p);
      return '1\n';
    });
    try {
      expect(b.gpus()[1]!.numaNode).toBe(1);
      expect(asked).toEqual(['/sys/bus/pci/devices/0000:2a:00.0/numa_node']);
    } finally {
      b.close();
    }
  });

  it('treats a sysfs NUMA node of -1 as unknown', () => {
    const b = openFake(loadFixture('fake-nvml-2gpu.json'), () => '-1\n');
    try {
      expect(b.gpus()[1]!.numaNode).toBeNull();
    } finally {
      b.close();
    }
  });

  it('throws GS_ERR_NVML_UNAVAILABLE for a library that is not there', () => {
    expect(() => new NvmlBackend({ path: '/nonexistent/libnvidia-ml.so.1' })).toThrow(expect.objectContaining({ code: 'GS_ERR_NVML_UNAVAILABLE' }) as GsError);
  });

  it('names sysfs PCI devices as the kernel does', () => {
    expect(sysfsPciName('00000000:19:00.0')).toBe('0000:19:00.0');
    expect(sysfsPciName('00000001:AB:00.1')).toBe('0001:ab:00.1');
  });
});
