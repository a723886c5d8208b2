import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { gpu } from '../../../test/k8s/dra-kubelet-fixtures.js';
import { procDeviceNode } from './kubelet-host.js';

const root = mkdtempSync(join(tmpdir(), 'gs-proc-'));
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('procDeviceNode', () => {
  it('takes the minor the driver reports for the GPU\'s PCI address (its 4-digit domain form)', () => {
    mkdirSync(join(root, '0000:1a:00.0'), { recursive: true });
    writeFileSync(join(root, '0000:1a:00.0', 'information'), 'Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 155\nGPU UUID: \t GPU-x\nVideo BIOS: \t 96.00.99.00.01\nBus Type: \t PCIe\nDMA Size: \t 52 bits\nDMA Mask: \t 0xfffffffffffff\nBus Location: \t 0000:1a:00.0\nDevice Minor: \t 5\nGPU Firmware: \t 580.95.05\n');
    expect(procDeviceNode(gpu(0, { pciBusId: '00000000:1A:00.0' }), root)).toBe('/dev/nvidia5');
  });
  it('falls back to the index without a driver entry or a bus id', () => {
    expect(procDeviceNode(gpu(3, { pciBusId: '00000000:99:00.0' }), root)).toBe('/dev/nvidia3');
    expect(procDeviceNode(gpu(2, { pciBusId: null }), root)).toBe('/dev/nvidia2');
  });
});
