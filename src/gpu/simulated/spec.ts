import { fail, ok, type Issue, type Result } from '../../domain/index.js';
import { findModel, type SimulatedModel } from './catalog.js';

/** One simulated GPU before it has dynamic values. */
export interface SimulatedGpuSpec {
  readonly modelKey: string;
  readonly model: SimulatedModel;
  /** MIG profiles carved on this GPU, e.g. ['3g.40gb', '1g.10gb']; empty: MIG disabled. */
  readonly migProfiles: readonly string[];
}

const ITEM = /^(?:(\d+)\s*[xX]\s*)?([A-Za-z0-9-]+)(?::mig=([0-9a-z.+]+))?$/;
const PROFILE = /^([1-7])g\.(\d+)gb$/;
/** Slices (GPCs) a MIG-capable GPU divides into. */
const MIG_SLICES = 7;
const MAX_SIMULATED_GPUS = 1024;

/**
 * Parses a fleet spec: `2xH100-80GB,1xA100-40GB`, with optional MIG layouts
 * (`1xA100-40GB:mig=3g.20gb+2g.10gb+1g.5gb`).
 */
export function parseFleetSpec(spec: string): Result<SimulatedGpuSpec[]> {
  const items = spec.split(',').map((s) => s.trim());
  if (spec.trim() === '') return fail('simulate', 'empty', 'is empty; expected a fleet such as 2xH100-80GB,1xA100-40GB');
  const gpus: SimulatedGpuSpec[] = [];
  const issues: Issue[] = [];
  for (const item of items) {
    const m = ITEM.exec(item);
    if (!m) {
      issues.push({ field: 'simulate', code: 'malformed', message: `"${item}" is not a fleet item; expected COUNTxMODEL such as 2xH100-80GB, optionally :mig=3g.40gb+1g.10gb` });
      continue;
    }
    const [, countText, modelText, migText] = m as unknown as [string, string | undefined, string, string | undefined];
    const count = countText === undefined ? 1 : Number(countText);
    if (count < 1) issues.push({ field: 'simulate', code: 'zero', message: `"${item}" has a count of 0; each item needs at least one GPU` });
    const found = findModel(modelText);
    if ('candidates' in found) {
      issues.push({ field: 'simulate', code: 'unknownValue', message: `unknown GPU model "${modelText}"; known models: ${found.candidates.join(', ')}` });
      continue;
    }
    const mig = migText === undefined ? ok<string[]>([]) : parseMigLayout(migText, found.key, found.model);
    if (!mig.ok) {
      issues.push(...mig.issues);
      continue;
    }
    for (let i = 0; i < count; i += 1) gpus.push({ modelKey: found.key, model: found.model, migProfiles: mig.value });
  }
  if (issues.length > 0) return { ok: false, issues };
  if (gpus.length > MAX_SIMULATED_GPUS) return fail('simulate', 'outOfRange', `describes ${gpus.length} GPUs; at most ${MAX_SIMULATED_GPUS} are simulated on one machine`);
  return ok(gpus);
}

function parseMigLayout(text: string, key: string, model: SimulatedModel): Result<string[]> {
  if (!model.migCapable) return fail('simulate', 'conflict', `${key} does not support MIG; MIG-capable models: A100, H100, H200`);
  const profiles = text.split('+');
  let slices = 0;
  let memoryMiB = 0;
  for (const p of profiles) {
    const m = PROFILE.exec(p);
    if (!m) return fail('simulate', 'malformed', `"${p}" is not a MIG profile; expected names like 1g.10gb or 3g.40gb`);
    slices += Number(m[1]);
    memoryMiB += migMemoryMiB(p);
  }
  if (slices > MIG_SLICES) return fail('simulate', 'exceedsCapacity', `MIG layout "${text}" uses ${slices} compute slices; a ${key} has ${MIG_SLICES}`);
  if (memoryMiB > model.memoryMiB) return fail('simulate', 'exceedsCapacity', `MIG layout "${text}" needs more memory than a ${key} has`);
  return ok(profiles);
}

/** Memory of a MIG profile as the driver reports it: a little under the marketed GB (1g.10gb shows 9.75 GiB). */
export function migMemoryMiB(profile: string): number {
  const gb = Number(PROFILE.exec(profile)?.[2] ?? 0);
  return Math.floor(gb * 1000 * 0.975);
}

/** SMs of a MIG profile: its share of the GPU's slices, all of them for a 7g profile. */
export function migMultiprocessors(profile: string, model: SimulatedModel): number {
  const g = Number(PROFILE.exec(profile)?.[1] ?? 0);
  return g >= MIG_SLICES ? model.multiprocessorCount : Math.floor(model.multiprocessorCount / MIG_SLICES / 2) * 2 * g;
}
