import type { Gpu } from './gpu.js';
import { fail, ok, type Issue, type Result } from './result.js';
import { formatBytes, parseBytes, parseMemoryQuantity, parsePercent, resolveMemory, sharePercent, type MemoryQuantity } from './units.js';

/** How a slice shares its GPU with others. */
export const ISOLATION_MODES = ['time-slice', 'sm-partition', 'mig', 'exclusive'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/**
 * What a time-slice compute limit of P% is P% of (libgpushare's GPUSHARE_COMPUTE_ACCOUNTING,
 * native/shim/COMPUTE.md "What a share means"): `throughput`, the program's unlimited throughput
 * (busy time weighted by the SM clock it ran at, and the task runs only in its own window even
 * alone, so its CPU gaps count too); `gpu`, the GPU's clock-weighted time (a program that keeps
 * the GPU busy less than P% is not slowed); `time`, the GPU's plain time.
 */
export const COMPUTE_ACCOUNTING = ['throughput', 'gpu', 'time'] as const;
export type ComputeAccounting = (typeof COMPUTE_ACCOUNTING)[number];

/** Named priorities; any integer 0-1000 is accepted too (higher wins). */
export const PRIORITY_LEVELS = { low: 100, normal: 500, high: 900 } as const;
export const PRIORITY_MAX = 1000;

/** Case-insensitive include/exclude lists. An empty include list means "any". */
export interface Selector {
  readonly include: readonly string[];
  readonly exclude: readonly string[];
}

/** A validated request for a slice of one or more GPUs: what the scheduler places. */
export interface SliceRequest {
  /** Number of GPUs; 0 means a CPU-only task. */
  readonly gpus: number;
  /** Memory per GPU; null means the whole GPU's memory is available to it (no limit). */
  readonly memory: MemoryQuantity | null;
  /** Compute per GPU as a share 0-1; null means no compute limit. */
  readonly compute: number | null;
  readonly priority: number;
  readonly isolation: IsolationMode;
  /** A MIG profile such as `1g.10gb`; with isolation `mig` and no profile, the smallest that fits `memory`. */
  readonly migProfile: string | null;
  /** Model selectors match the short model (`H100-80GB`) or the board name, as substrings. */
  readonly models: Selector;
  readonly uuids: Selector;
  readonly numaNode: number | null;
  /** How a time-slice compute limit is accounted; absent: `throughput` (stored requests from before it have none). */
  readonly computeAccounting?: ComputeAccounting;
}

/** A request as it arrives from a CLI flag set or an API body, before validation. */
export interface SliceRequestInput {
  readonly gpus?: number | string | undefined;
  /** `8Gi`, `50%`, or a number of bytes. */
  readonly memory?: string | number | undefined;
  /** Percent of the GPU's compute: `30`, `30%`. */
  readonly compute?: string | number | undefined;
  /** `low` | `normal` | `high` or an integer 0-1000. */
  readonly priority?: string | number | undefined;
  readonly isolation?: string | undefined;
  readonly migProfile?: string | undefined;
  readonly models?: { readonly include?: readonly string[]; readonly exclude?: readonly string[] } | undefined;
  readonly uuids?: { readonly include?: readonly string[]; readonly exclude?: readonly string[] } | undefined;
  readonly numaNode?: number | string | undefined;
  /** `throughput` (default), `gpu` or `time`. */
  readonly computeAccounting?: string | undefined;
}

const MIG_PROFILE = /^(\d)g\.(\d+)gb(\+me)?$/;
const MAX_GPUS_PER_REQUEST = 64;

/** Validates and normalises a request, reporting every problem at once. */
export function parseSliceRequest(input: SliceRequestInput): Result<SliceRequest> {
  const issues: Issue[] = [];
  const take = <T>(r: Result<T>, fallback: T): T => {
    if (r.ok) return r.value;
    issues.push(...r.issues);
    return fallback;
  };

  const gpus = take(parseCount(input.gpus, 'gpus', 1), 1);
  const memory = input.memory === undefined ? null : take(parseMemoryInput(input.memory), null);
  const compute = input.compute === undefined ? null : take(parsePercent(String(input.compute), 'compute'), null);
  const priority = take(parsePriority(input.priority), PRIORITY_LEVELS.normal);
  const migProfile = input.migProfile === undefined ? null : take(parseMigProfile(input.migProfile), null);
  const isolation = take(parseIsolation(input.isolation, migProfile), 'time-slice');
  const models = take(parseSelector(input.models, 'models'), EMPTY_SELECTOR);
  const uuids = take(parseSelector(input.uuids, 'uuids'), EMPTY_SELECTOR);
  const numaNode = input.numaNode === undefined ? null : take(parseCount(input.numaNode, 'numaNode', 0, { allowZero: true, max: 1023 }), null);
  const computeAccounting = input.computeAccounting === undefined ? undefined : take(parseComputeAccounting(input.computeAccounting), undefined);

  if (issues.length > 0) return { ok: false, issues };

  const request: SliceRequest = { gpus, memory, compute, priority, isolation, migProfile, models, uuids, numaNode, ...(computeAccounting !== undefined ? { computeAccounting } : {}) };
  const conflicts = findConflicts(request);
  return conflicts.length > 0 ? { ok: false, issues: conflicts } : ok(request);
}

/** Checks a valid request against the GPUs that exist: could it ever fit here? */
export function checkRequestAgainstGpus(request: SliceRequest, gpus: readonly Gpu[]): Issue[] {
  if (request.gpus === 0) return [];
  const eligible = gpus.filter((g) => matchesSelectors(request, g));
  if (eligible.length === 0) {
    const models = [...new Set(gpus.map((g) => g.model))].join(', ') || 'none';
    return [{ field: 'models', code: 'exceedsCapacity', message: `no GPU here matches the request's model/UUID/NUMA selectors (models here: ${models})` }];
  }
  const issues: Issue[] = [];
  if (request.gpus > eligible.length) {
    issues.push({ field: 'gpus', code: 'exceedsCapacity', message: `asks for ${request.gpus} GPUs but only ${eligible.length} here match the request` });
  }
  if (request.memory?.kind === 'bytes') {
    const largest = eligible.reduce((a, b) => (b.memoryTotalBytes > a.memoryTotalBytes ? b : a));
    if (request.memory.bytes > largest.memoryTotalBytes) {
      issues.push({
        field: 'memory',
        code: 'exceedsCapacity',
        message: `asks for ${formatBytes(request.memory.bytes)} per GPU but the largest matching GPU (${largest.model}) has ${formatBytes(largest.memoryTotalBytes)}`,
      });
    }
  }
  return issues;
}

/** Whether a GPU passes the request's model, UUID and NUMA selectors. */
export function matchesSelectors(request: SliceRequest, gpu: Gpu): boolean {
  const modelHit = (s: string): boolean => {
    const needle = s.toLowerCase();
    return gpu.model.toLowerCase().includes(needle) || gpu.name.toLowerCase().includes(needle);
  };
  const uuidHit = (s: string): boolean => gpu.uuid.toLowerCase() === s.toLowerCase();
  if (request.models.include.length > 0 && !request.models.include.some(modelHit)) return false;
  if (request.models.exclude.some(modelHit)) return false;
  if (request.uuids.include.length > 0 && !request.uuids.include.some(uuidHit)) return false;
  if (request.uuids.exclude.some(uuidHit)) return false;
  if (request.numaNode !== null && gpu.numaNode !== request.numaNode) return false;
  return true;
}

/** Memory in bytes the request takes on a GPU of `totalBytes`. */
export function requestedBytesOn(request: SliceRequest, totalBytes: number): number {
  return request.memory === null ? totalBytes : resolveMemory(request.memory, totalBytes);
}

const EMPTY_SELECTOR: Selector = { include: [], exclude: [] };

function parseMemoryInput(value: string | number): Result<MemoryQuantity> {
  if (typeof value === 'number') {
    const r = parseBytes(Number.isFinite(value) ? String(value) : 'NaN', 'memory');
    return r.ok ? ok({ kind: 'bytes', bytes: r.value }) : r;
  }
  return parseMemoryQuantity(value, 'memory');
}

function parseCount(
  value: number | string | undefined,
  field: string,
  fallback: number,
  opts: { allowZero?: boolean; max?: number } = { allowZero: true },
): Result<number> {
  if (value === undefined) return ok(fallback);
  const max = opts.max ?? MAX_GPUS_PER_REQUEST;
  const text = String(value).trim();
  if (text === '') return fail(field, 'empty', `is empty; expected a whole number from 0 to ${max}`);
  if (!/^[+-]?\d+(\.\d+)?$/.test(text)) return fail(field, 'malformed', `"${value}" is not a number; expected a whole number from 0 to ${max}`);
  const n = Number(text);
  if (n < 0) return fail(field, 'negative', `"${value}" is negative; expected a whole number from 0 to ${max}`);
  if (!Number.isInteger(n)) return fail(field, 'notInteger', `"${value}" is not a whole number; expected a whole number from 0 to ${max}`);
  if (n === 0 && opts.allowZero === false) return fail(field, 'zero', `is zero; expected a whole number from 1 to ${max}`);
  if (n > max) return fail(field, 'outOfRange', `"${value}" is more than ${max}`);
  return ok(n);
}

function parsePriority(value: string | number | undefined): Result<number> {
  if (value === undefined) return ok(PRIORITY_LEVELS.normal);
  const text = String(value).trim().toLowerCase();
  if (text in PRIORITY_LEVELS) return ok(PRIORITY_LEVELS[text as keyof typeof PRIORITY_LEVELS]);
  const n = Number(text);
  if (text === '' || !Number.isInteger(n) || n < 0 || n > PRIORITY_MAX) {
    return fail('priority', 'unknownValue', `"${value}" is not a priority; expected low, normal, high or a whole number from 0 to ${PRIORITY_MAX}`);
  }
  return ok(n);
}

function parseIsolation(value: string | undefined, migProfile: string | null): Result<IsolationMode> {
  if (value === undefined) return ok(migProfile !== null ? 'mig' : 'time-slice');
  const mode = value.trim().toLowerCase();
  if (!(ISOLATION_MODES as readonly string[]).includes(mode)) {
    return fail('isolation', 'unknownValue', `"${value}" is not an isolation mode; expected one of ${ISOLATION_MODES.join(', ')}`);
  }
  return ok(mode as IsolationMode);
}

function parseComputeAccounting(value: string): Result<ComputeAccounting> {
  const v = value.trim().toLowerCase();
  if (!(COMPUTE_ACCOUNTING as readonly string[]).includes(v)) {
    return fail('computeAccounting', 'unknownValue', `"${value}" is not a compute accounting; expected one of ${COMPUTE_ACCOUNTING.join(', ')}`);
  }
  return ok(v as ComputeAccounting);
}

function parseMigProfile(value: string): Result<string> {
  const profile = value.trim().toLowerCase();
  if (!MIG_PROFILE.test(profile)) return fail('migProfile', 'malformed', `"${value}" is not a MIG profile; expected a name like 1g.10gb, 3g.40gb or 1g.10gb+me`);
  return ok(profile);
}

function parseSelector(
  value: { readonly include?: readonly string[]; readonly exclude?: readonly string[] } | undefined,
  field: string,
): Result<Selector> {
  const clean = (list: readonly string[] | undefined): string[] => (list ?? []).map((s) => s.trim()).filter((s) => s !== '');
  const include = clean(value?.include);
  const exclude = clean(value?.exclude);
  const both = include.filter((s) => exclude.some((e) => e.toLowerCase() === s.toLowerCase()));
  if (both.length > 0) return fail(field, 'conflict', `"${both[0]}" is both included and excluded`);
  return ok({ include, exclude });
}

function findConflicts(r: SliceRequest): Issue[] {
  const issues: Issue[] = [];
  const conflict = (field: string, message: string): void => {
    issues.push({ field, code: 'conflict', message });
  };
  if (r.gpus === 0) {
    if (r.memory !== null) conflict('memory', 'is set but gpus is 0; ask for at least 1 GPU or drop the memory request');
    if (r.compute !== null) conflict('compute', 'is set but gpus is 0; ask for at least 1 GPU or drop the compute request');
    if (r.migProfile !== null) conflict('migProfile', 'is set but gpus is 0');
    if (r.uuids.include.length > 0 || r.models.include.length > 0) conflict('gpus', 'is 0 but GPU selectors are set; ask for at least 1 GPU');
  }
  if (r.gpus > 0 && r.uuids.include.length > 0 && r.uuids.include.length < r.gpus) {
    conflict('uuids', `lists ${r.uuids.include.length} GPU UUID(s) but the request asks for ${r.gpus} GPUs`);
  }
  if (r.isolation === 'exclusive') {
    const partial = (r.memory?.kind === 'fraction' && r.memory.fraction < 1) || (r.compute !== null && r.compute < 1) || r.memory?.kind === 'bytes';
    if (partial) conflict('isolation', 'exclusive takes whole GPUs; drop the memory and compute limits, or use time-slice');
  }
  if (r.isolation === 'sm-partition' && r.compute === null) {
    conflict('compute', 'is required with isolation sm-partition (it sets how many SMs the slice gets)');
  }
  // libgpushare reads whole percentages only, and the daemon must size the partition exactly as it will.
  const percent = r.compute === null ? null : sharePercent(r.compute);
  if (r.isolation === 'sm-partition' && percent !== null && !Number.isInteger(percent)) {
    conflict('compute', `is ${percent}%; isolation sm-partition takes a whole percentage (it becomes a number of SMs)`);
  }
  if (r.computeAccounting !== undefined && (r.compute === null || r.compute >= 1 || r.isolation !== 'time-slice')) {
    conflict('computeAccounting', 'applies to a time-slice compute limit under 100% only (an SM partition is a number of SMs); set compute, or drop computeAccounting');
  }
  if (r.isolation === 'mig') {
    if (r.compute !== null) conflict('compute', 'cannot be set with isolation mig: a MIG instance has fixed compute; pick a larger profile instead');
    if (r.migProfile === null && r.memory === null) conflict('migProfile', 'or memory is required with isolation mig (to choose the MIG profile)');
  } else if (r.migProfile !== null) {
    conflict('migProfile', `needs isolation mig, not ${r.isolation}`);
  }
  return issues;
}
