/** What the simulated backend knows of each GPU model: enough to look like the real board. */
export interface SimulatedModel {
  /** Marketing name as the driver reports it. */
  readonly name: string;
  readonly memoryMiB: number;
  readonly computeCapability: string;
  readonly multiprocessorCount: number;
  readonly powerLimitWatts: number;
  readonly idlePowerWatts: number;
  readonly maxClockSmMHz: number;
  readonly clockMemoryMHz: number;
  /** NVLinks per GPU to each peer of the same model on one board; 0 for PCIe cards. */
  readonly nvlinksPerPeer: number;
  readonly migCapable: boolean;
  readonly ecc: boolean;
  /** Hopper and newer: SMs the driver can put in green-context groups of 8 (gpushare-smprobe). */
  readonly smGroupable?: number;
}

/**
 * Models by the short names users type (`H100-80GB`). Memory sizes are what the driver
 * reports on real boards (an 80 GB H100 shows 81559 MiB), so percentages resolve as on hardware.
 */
export const SIMULATED_MODELS: ReadonlyMap<string, SimulatedModel> = new Map([
  ['H100-80GB', { name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, computeCapability: '9.0', multiprocessorCount: 132, powerLimitWatts: 700, idlePowerWatts: 70, maxClockSmMHz: 1980, clockMemoryMHz: 2619, nvlinksPerPeer: 18, migCapable: true, ecc: true, smGroupable: 120 }],
  ['H200-141GB', { name: 'NVIDIA H200', memoryMiB: 143771, computeCapability: '9.0', multiprocessorCount: 132, powerLimitWatts: 700, idlePowerWatts: 75, maxClockSmMHz: 1980, clockMemoryMHz: 3201, nvlinksPerPeer: 18, migCapable: true, ecc: true, smGroupable: 120 }],
  ['A100-80GB', { name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81920, computeCapability: '8.0', multiprocessorCount: 108, powerLimitWatts: 400, idlePowerWatts: 55, maxClockSmMHz: 1410, clockMemoryMHz: 1593, nvlinksPerPeer: 12, migCapable: true, ecc: true }],
  ['A100-40GB', { name: 'NVIDIA A100-SXM4-40GB', memoryMiB: 40960, computeCapability: '8.0', multiprocessorCount: 108, powerLimitWatts: 400, idlePowerWatts: 50, maxClockSmMHz: 1410, clockMemoryMHz: 1215, nvlinksPerPeer: 12, migCapable: true, ecc: true }],
  ['L40S-48GB', { name: 'NVIDIA L40S', memoryMiB: 46068, computeCapability: '8.9', multiprocessorCount: 142, powerLimitWatts: 350, idlePowerWatts: 35, maxClockSmMHz: 2520, clockMemoryMHz: 9001, nvlinksPerPeer: 0, migCapable: false, ecc: true }],
  ['L4-24GB', { name: 'NVIDIA L4', memoryMiB: 23034, computeCapability: '8.9', multiprocessorCount: 58, powerLimitWatts: 72, idlePowerWatts: 16, maxClockSmMHz: 2040, clockMemoryMHz: 6251, nvlinksPerPeer: 0, migCapable: false, ecc: true }],
  ['A10-24GB', { name: 'NVIDIA A10', memoryMiB: 23028, computeCapability: '8.6', multiprocessorCount: 72, powerLimitWatts: 150, idlePowerWatts: 20, maxClockSmMHz: 1695, clockMemoryMHz: 6251, nvlinksPerPeer: 0, migCapable: false, ecc: true }],
  ['T4-16GB', { name: 'Tesla T4', memoryMiB: 15360, computeCapability: '7.5', multiprocessorCount: 40, powerLimitWatts: 70, idlePowerWatts: 10, maxClockSmMHz: 1590, clockMemoryMHz: 5001, nvlinksPerPeer: 0, migCapable: false, ecc: true }],
  ['V100-32GB', { name: 'Tesla V100-SXM2-32GB', memoryMiB: 32510, computeCapability: '7.0', multiprocessorCount: 80, powerLimitWatts: 300, idlePowerWatts: 40, maxClockSmMHz: 1530, clockMemoryMHz: 877, nvlinksPerPeer: 6, migCapable: false, ecc: true }],
  ['V100-16GB', { name: 'Tesla V100-SXM2-16GB', memoryMiB: 16160, computeCapability: '7.0', multiprocessorCount: 80, powerLimitWatts: 300, idlePowerWatts: 40, maxClockSmMHz: 1530, clockMemoryMHz: 877, nvlinksPerPeer: 6, migCapable: false, ecc: true }],
  ['P100-16GB', { name: 'Tesla P100-PCIE-16GB', memoryMiB: 16280, computeCapability: '6.0', multiprocessorCount: 56, powerLimitWatts: 250, idlePowerWatts: 30, maxClockSmMHz: 1328, clockMemoryMHz: 715, nvlinksPerPeer: 0, migCapable: false, ecc: true }],
  ['RTX4090-24GB', { name: 'NVIDIA GeForce RTX 4090', memoryMiB: 24564, computeCapability: '8.9', multiprocessorCount: 128, powerLimitWatts: 450, idlePowerWatts: 20, maxClockSmMHz: 2520, clockMemoryMHz: 10501, nvlinksPerPeer: 0, migCapable: false, ecc: false }],
]);

/** Finds a model by its short name, case-insensitively; a bare family (`H100`) works when it is unambiguous. */
export function findModel(text: string): { key: string; model: SimulatedModel } | { candidates: string[] } {
  const wanted = text.trim().toUpperCase();
  for (const [key, model] of SIMULATED_MODELS) if (key.toUpperCase() === wanted) return { key, model };
  const family = [...SIMULATED_MODELS.keys()].filter((k) => k.toUpperCase().split('-')[0] === wanted);
  if (family.length === 1) return { key: family[0]!, model: SIMULATED_MODELS.get(family[0]!)! };
  return { candidates: family.length > 0 ? family : [...SIMULATED_MODELS.keys()] };
}

/**
 * What a simulated GPU's driver would group for SM partitions, by the model's driver name: the
 * lent H200's 120 of 132 SMs (gpushare-smprobe, 2026-12-01; the H100 is the same GH100 chip
 * with 132 SMs). null: not modelled (placement assumes every whole group of 8).
 */
export function simulatedSmGroupable(name: string): number | null {
  for (const model of SIMULATED_MODELS.values()) if (model.name === name) return model.smGroupable ?? null;
  return null;
}
