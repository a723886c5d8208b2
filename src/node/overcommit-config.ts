/**
 * Memory overcommit's settings (issue 22 items 3-4; docs in README.md, "Memory overcommit"):
 * the config file's `overcommit` section and `serve --overcommit` / `--timeshare-quantum`,
 * validated into what the daemon uses. Ratios are per GPU index (`{"0": 1.5}`) or one for every
 * GPU; a GPU without one is not overcommitted.
 */
import { z } from 'zod';
import { parseDuration } from '../contract/duration.js';
import { ErrorCodes, GsError, parseBytes } from '../domain/index.js';
import type { ResidencySettings } from './residency.js';

/** Beyond 4x the card, most of a slice's life would be spent swapped out: refused. */
export const MAX_OVERCOMMIT_RATIO = 4;

const Ratio = z.number().min(1).max(MAX_OVERCOMMIT_RATIO);

export const OvercommitSchema = z.strictObject({
  /** One ratio for every GPU, or ratios by GPU index ("0": 1.5); absent GPUs are not overcommitted. */
  gpus: z.union([Ratio, z.record(z.string().regex(/^\d{1,4}$/, 'must be a GPU index'), Ratio)]),
  /** No launch for this long: a slice is idle, swapped out first (default 5). */
  idleSeconds: z.number().min(0.1).max(3600).optional(),
  /** Time-sharing: a slice others wait for keeps the GPU at least this long (default 30). */
  timeshareQuantumSeconds: z.number().min(0.1).max(3600).optional(),
  /** A waiting slice is let in at the latest after this long, unless a higher-priority one is active (default 2x the quantum). */
  maxWaitSeconds: z.number().min(0.1).max(7200).optional(),
  /** Memory kept free on each card for growth between two looks (default 512Mi). */
  headroom: z.union([z.string().max(32), z.number().int().min(0)]).optional(),
});
export type OvercommitFile = z.infer<typeof OvercommitSchema>;

export interface OvercommitConfig {
  /** By GPU index; `all` for every GPU. */
  readonly ratios: { readonly all: number | null; readonly byIndex: ReadonlyMap<number, number> };
  readonly residency: ResidencySettings;
  /** How often the daemon looks at the slices' memory (ms). */
  readonly tickMs: number;
}

const DEFAULT_HEADROOM = 512 * 2 ** 20;

/** The overcommit settings from the file and flags (flags win); null when no GPU is overcommitted. */
export function overcommitConfig(file: OvercommitFile | undefined, flags: { readonly overcommit?: string | undefined; readonly timeshareQuantum?: string | undefined }, swap: boolean): OvercommitConfig | null {
  let gpus = file?.gpus;
  if (flags.overcommit !== undefined) {
    const n = /^\d+(\.\d+)?$/.test(flags.overcommit.trim()) ? Number(flags.overcommit) : NaN;
    if (!(n >= 1 && n <= MAX_OVERCOMMIT_RATIO)) throw new GsError(ErrorCodes.invalidArgument, `--overcommit: "${flags.overcommit.slice(0, 40)}" is not a ratio from 1 to ${MAX_OVERCOMMIT_RATIO} (1.5: each GPU may promise 1.5x its memory)`);
    gpus = n;
  }
  let quantumMs = (file?.timeshareQuantumSeconds ?? 30) * 1000;
  if (flags.timeshareQuantum !== undefined) {
    const ms = parseDuration(flags.timeshareQuantum);
    if (ms === null || ms > 3_600_000) throw new GsError(ErrorCodes.invalidArgument, `--timeshare-quantum: "${flags.timeshareQuantum.slice(0, 40)}" is not a duration such as 30s or 2m (at most 1h)`);
    quantumMs = ms;
  }
  if (gpus === undefined) {
    if (flags.timeshareQuantum !== undefined) throw new GsError(ErrorCodes.invalidArgument, '--timeshare-quantum: time-sharing happens under memory overcommit; give a ratio too (--overcommit, or overcommit.gpus)');
    return null;
  }
  const byIndex = new Map(typeof gpus === 'number' ? [] : Object.entries(gpus).map(([k, v]) => [Number(k), v] as const));
  const all = typeof gpus === 'number' ? gpus : null;
  if ((all ?? 1) === 1 && [...byIndex.values()].every((r) => r === 1)) return null;
  if (!swap) throw new GsError(ErrorCodes.invalidArgument, 'overcommit: memory overcommit moves idle slices to host memory by slice swap, and slice swap is off (--no-swap, or "swap": false); leave it on');
  let headroomBytes = DEFAULT_HEADROOM;
  if (file?.headroom !== undefined) {
    const parsed = typeof file.headroom === 'number' ? { ok: true as const, value: file.headroom } : parseBytes(file.headroom, 'overcommit.headroom');
    if (!parsed.ok) throw new GsError(ErrorCodes.invalidArgument, `overcommit.headroom: "${String(file.headroom)}" is not an amount of memory such as 512Mi`);
    headroomBytes = parsed.value;
  }
  const maxWaitMs = (file?.maxWaitSeconds ?? (2 * quantumMs) / 1000) * 1000;
  if (maxWaitMs < quantumMs) throw new GsError(ErrorCodes.invalidArgument, `overcommit.maxWaitSeconds (${maxWaitMs / 1000}) is shorter than the time-sharing quantum (${quantumMs / 1000} s): a turn could never run its quantum`);
  const idleMs = (file?.idleSeconds ?? 5) * 1000;
  return { ratios: { all, byIndex }, residency: { idleMs, quantumMs, maxWaitMs, headroomBytes }, tickMs: Math.min(250, idleMs / 2) };
}

/** The ratio of the GPU at `index` (1: not overcommitted). */
export function ratioOf(config: OvercommitConfig | null, index: number): number {
  if (config === null) return 1;
  return config.ratios.byIndex.get(index) ?? config.ratios.all ?? 1;
}

/** GPU indices the config names that the machine does not have: an error that names them. */
export function checkOvercommitGpus(config: OvercommitConfig | null, indices: readonly number[]): void {
  const unknown = [...(config?.ratios.byIndex.keys() ?? [])].filter((i) => !indices.includes(i));
  if (unknown.length > 0) throw new GsError(ErrorCodes.invalidArgument, `overcommit.gpus: no GPU ${unknown.join(', ')} on this machine (GPUs ${indices.join(', ') || 'none'})`);
}
