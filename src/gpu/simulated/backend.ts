import { GsError, ErrorCodes, type Gpu, type GpuLink, type GpuSystem, type MigDevice } from '../../domain/index.js';
import type { GpuBackend } from '../backend.js';
import { migMemoryMiB, migMultiprocessors, type SimulatedGpuSpec } from './spec.js';

const MIB = 2 ** 20;

export interface SimulatedBackendOptions {
  /** The spec as the user wrote it, for descriptions. */
  readonly label: string;
  readonly gpus: readonly SimulatedGpuSpec[];
  /** Milliseconds since the epoch; dynamic values are a pure function of it, so tests pin it. */
  readonly clock?: () => number;
  /** Varies UUIDs and the phase of dynamic values between simulated machines. */
  readonly seed?: number;
}

/**
 * A fleet that exists only in memory. Values are deterministic for a given seed and clock:
 * identity (UUIDs, PCI ids) never changes, and utilization, power and temperature drift
 * slowly like an idle machine's so dashboards have something honest to show.
 */
export class SimulatedBackend implements GpuBackend {
  readonly kind = 'simulated' as const;
  readonly description: string;
  private readonly clock: () => number;
  private readonly seed: number;
  /** When the simulated driver "loaded" (seconds): energy counts from here. */
  private readonly loadedAt: number;
  private closed = false;

  constructor(private readonly options: SimulatedBackendOptions) {
    this.clock = options.clock ?? Date.now;
    this.seed = options.seed ?? 0;
    this.loadedAt = this.clock() / 1000;
    this.description = `simulated GPUs (${options.label})`;
  }

  system(): GpuSystem {
    this.assertOpen();
    return { backend: 'simulated', driverVersion: null, cudaDriverVersion: null, nvmlVersion: null };
  }

  gpus(): Gpu[] {
    this.assertOpen();
    const seconds = this.clock() / 1000;
    return this.options.gpus.map((spec, index) => this.gpuAt(spec, index, seconds));
  }

  close(): void {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new GsError(ErrorCodes.internal, 'simulated GPU backend used after close()');
  }

  private gpuAt(spec: SimulatedGpuSpec, index: number, seconds: number): Gpu {
    const m = spec.model;
    const h = hash32(`${this.seed}:${index}:${spec.modelKey}`);
    // An idle GPU's utilization wanders between 0 and 3%: slow sine waves with per-GPU phase.
    const wave = 0.5 + 0.5 * Math.sin((2 * Math.PI * seconds) / (60 + (h % 120)) + (h % 628) / 100);
    const utilization = Math.round(wave * 3) / 100;
    const total = m.memoryMiB * MIB;
    const reserved = Math.round((m.memoryMiB * 0.0065)) * MIB;
    const migDevices = spec.migProfiles.map((p, i) => this.migDevice(spec, index, i, p));
    const numaNode = this.options.gpus.length >= 4 && index >= this.options.gpus.length / 2 ? 1 : 0;
    return {
      index,
      uuid: uuidFrom(`${this.seed}:gpu:${index}:${spec.modelKey}`, 'GPU'),
      name: m.name,
      model: spec.modelKey,
      health: 'ok',
      memoryTotalBytes: total,
      memoryUsedBytes: 0,
      memoryFreeBytes: total - reserved,
      memoryReservedBytes: reserved,
      utilizationGpu: utilization,
      utilizationMemory: 0,
      temperatureC: 28 + (h % 6) + Math.round(wave * 2),
      powerDrawWatts: Math.round((m.idlePowerWatts + wave * 4) * 100) / 100,
      powerLimitWatts: m.powerLimitWatts,
      clockSmMHz: utilization > 0.02 ? m.maxClockSmMHz : 345,
      clockMemoryMHz: m.clockMemoryMHz,
      maxClockSmMHz: m.maxClockSmMHz,
      maxClockMemoryMHz: m.clockMemoryMHz,
      pciBusId: pciBusId(index),
      numaNode,
      computeCapability: m.computeCapability,
      multiprocessorCount: m.multiprocessorCount,
      migMode: m.migCapable ? (spec.migProfiles.length > 0 ? 'enabled' : 'disabled') : 'unsupported',
      migDevices,
      processes: [],
      eccErrors: m.ecc ? { corrected: 0, uncorrected: 0 } : null,
      clockEventReasons: utilization > 0.02 ? [] : ['gpu_idle'],
      // An idle board's draw since the simulated driver loaded; the wave's share is left out (it averages out).
      energyJoules: Math.round(Math.max(0, seconds - this.loadedAt) * (m.idlePowerWatts + 2) * 1000) / 1000,
      pcieReplays: 0,
      xidErrors: 0,
      lastXid: null,
      topology: this.links(index),
    };
  }

  private migDevice(spec: SimulatedGpuSpec, gpuIndex: number, i: number, profile: string): MigDevice {
    return {
      index: i,
      uuid: uuidFrom(`${this.seed}:mig:${gpuIndex}:${i}:${profile}`, 'MIG'),
      name: `${spec.model.name} MIG ${profile}`,
      profile,
      gpuInstanceId: i + 1,
      computeInstanceId: 0,
      memoryTotalBytes: migMemoryMiB(profile) * MIB,
      memoryUsedBytes: 0,
      multiprocessorCount: migMultiprocessors(profile, spec.model),
    };
  }

  /** SXM boards of one model talk over NVLink; PCIe cards through the host, across NUMA nodes when split. */
  private links(index: number): GpuLink[] {
    const all = this.options.gpus;
    const self = all[index]!;
    const numa = (i: number): number => (all.length >= 4 && i >= all.length / 2 ? 1 : 0);
    const links: GpuLink[] = [];
    all.forEach((peer, j) => {
      if (j === index) return;
      const nvlinks = peer.modelKey === self.modelKey ? self.model.nvlinksPerPeer : 0;
      const level = nvlinks > 0 ? 'NV' : numa(j) === numa(index) ? 'NODE' : 'SYS';
      links.push({ gpu: j, level, nvlinks });
    });
    return links;
  }
}

/** FNV-1a with murmur3's finaliser: a stable 32-bit hash whose nearby keys look unrelated. */
function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function uuidFrom(key: string, prefix: 'GPU' | 'MIG'): string {
  const hex = [0, 1, 2, 3].map((k) => hash32(`${key}#${k}`).toString(16).padStart(8, '0')).join('');
  return `${prefix}-${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

function pciBusId(index: number): string {
  const domain = Math.floor(index / 8).toString(16).padStart(8, '0');
  const bus = (0x18 + (index % 8) * 0x11).toString(16).toUpperCase().padStart(2, '0');
  return `${domain}:${bus}:00.0`;
}
