import { describe, expect, it } from 'vitest';
import { GsError } from '../domain/index.js';
import type { GpuBackend } from './backend.js';

/** What a particular fixture promises, so the shared suite can check exact values too. */
export interface BackendFixture {
  readonly backend: GpuBackend;
  readonly expectedCount: number;
}

/**
 * The conformance suite every GpuBackend passes (STYLE.md item 5): the same invariants hold
 * whether GPUs are real, faked in C behind NVML, or simulated.
 */
export function describeBackendConformance(name: string, open: () => BackendFixture): void {
  describe(`GpuBackend conformance: ${name}`, () => {
    it('lists GPUs ordered by index, with unique non-empty UUIDs', () => {
      const { backend, expectedCount } = open();
      try {
        const gpus = backend.gpus();
        expect(gpus.map((g) => g.index)).toEqual([...Array(expectedCount).keys()]);
        const uuids = gpus.map((g) => g.uuid);
        expect(new Set(uuids).size).toBe(uuids.length);
        uuids.forEach((u) => expect(u).toMatch(/^(GPU|unknown)-/));
      } finally {
        backend.close();
      }
    });

    it('reports memory, ratios and units within their ranges', () => {
      const { backend } = open();
      try {
        for (const g of backend.gpus().filter((x) => x.health === 'ok')) {
          expect(g.memoryTotalBytes).toBeGreaterThan(0);
          expect(g.memoryUsedBytes).toBeGreaterThanOrEqual(0);
          expect(g.memoryFreeBytes).toBeGreaterThanOrEqual(0);
          expect(g.memoryUsedBytes + g.memoryFreeBytes).toBeLessThanOrEqual(g.memoryTotalBytes);
          for (const r of [g.utilizationGpu, g.utilizationMemory]) {
            if (r !== null) expect(r >= 0 && r <= 1).toBe(true);
          }
          if (g.powerDrawWatts !== null && g.powerLimitWatts !== null) expect(g.powerLimitWatts).toBeGreaterThan(0);
          if (g.computeCapability !== null) expect(g.computeCapability).toMatch(/^\d+\.\d+$/);
          for (const p of g.processes) expect(p.pid).toBeGreaterThan(0);
          for (const m of g.migDevices) expect(m.memoryTotalBytes).toBeLessThanOrEqual(g.memoryTotalBytes);
          for (const l of g.topology) expect(l.gpu).not.toBe(g.index);
        }
      } finally {
        backend.close();
      }
    });

    it('keeps identity stable across readings', () => {
      const { backend } = open();
      try {
        const ids = (): string[] => backend.gpus().map((g) => `${g.uuid} ${g.name} ${g.pciBusId} ${g.memoryTotalBytes}`);
        expect(ids()).toEqual(ids());
      } finally {
        backend.close();
      }
    });

    it('produces plain JSON (no bigint, no undefined fields)', () => {
      const { backend } = open();
      try {
        const gpus = backend.gpus();
        expect(JSON.parse(JSON.stringify(gpus))).toEqual(gpus);
        expect(JSON.parse(JSON.stringify(backend.system()))).toEqual(backend.system());
        expect(backend.system().backend).toBe(backend.kind);
      } finally {
        backend.close();
      }
    });

    it('refuses use after close', () => {
      const { backend } = open();
      backend.close();
      expect(() => backend.gpus()).toThrow(GsError);
      expect(() => backend.close()).not.toThrow();
    });
  });
}
