/**
 * The opaque configuration a ResourceClaim (or its DeviceClass) may carry for gpushare's DRA
 * driver: `{apiVersion: gpu.gpushare.io/v1alpha1, kind: GpuConfig, isolation, priority,
 * computePolicy}`. Decoded strictly: a field or value we do not know is an error that names it
 * and says what is accepted, because a typo silently ignored would run the pod without the
 * isolation its owner asked for.
 */
import { z } from 'zod';
import { PRIORITY_LEVELS, PRIORITY_MAX } from '../../domain/index.js';
import { fail, ok, type Result } from '../../domain/result.js';
import { CONFIG_API_VERSION, CONFIG_KIND } from './names.js';

/** The isolation modes a DRA slice can have (MIG and exclusive are whole-device classes, not slice configs). */
export const CONFIG_ISOLATION = ['time-slice', 'sm-partition'] as const;
/** libgpushare's compute policies (GPUSHARE_COMPUTE_POLICY): hard caps, or work-conserving sharing. */
export const CONFIG_COMPUTE_POLICY = ['hard', 'share'] as const;

export interface GpuConfig {
  readonly isolation: (typeof CONFIG_ISOLATION)[number];
  /** 0-1000, higher wins (the domain's scale). */
  readonly priority: number;
  readonly computePolicy: (typeof CONFIG_COMPUTE_POLICY)[number];
}

export const DEFAULT_GPU_CONFIG: GpuConfig = { isolation: 'time-slice', priority: PRIORITY_LEVELS.normal, computePolicy: 'hard' };

const priorityNames = Object.keys(PRIORITY_LEVELS) as [keyof typeof PRIORITY_LEVELS, ...(keyof typeof PRIORITY_LEVELS)[]];

const schema = z.strictObject({
  apiVersion: z.literal(CONFIG_API_VERSION, { error: `apiVersion must be ${CONFIG_API_VERSION}` }),
  kind: z.literal(CONFIG_KIND, { error: `kind must be ${CONFIG_KIND}` }),
  isolation: z.enum(CONFIG_ISOLATION, { error: `isolation must be one of ${CONFIG_ISOLATION.join(', ')}` }).optional(),
  priority: z.union([z.enum(priorityNames), z.int().min(0).max(PRIORITY_MAX)]).optional(),
  computePolicy: z.enum(CONFIG_COMPUTE_POLICY, { error: `computePolicy must be one of ${CONFIG_COMPUTE_POLICY.join(', ')}` }).optional(),
});

const PRIORITY_ACCEPTED = `priority must be ${priorityNames.join(', ')} or a whole number from 0 to ${PRIORITY_MAX}`;
const ACCEPTED_FIELDS = Object.keys(schema.shape).join(', ');

/** Decodes one opaque parameters object (already JSON); errors name the field and what is accepted. */
export function parseGpuConfig(parameters: unknown): Result<GpuConfig> {
  const parsed = schema.safeParse(parameters);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    if (issue === undefined) return fail('config', 'malformed', 'is not a GpuConfig');
    if (issue.code === 'unrecognized_keys') {
      return fail(`config.${issue.keys.join(',')}`, 'unknownValue', `unknown field ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}; a ${CONFIG_KIND} accepts ${ACCEPTED_FIELDS}`);
    }
    const field = issue.path.length === 0 ? 'config' : `config.${issue.path.join('.')}`;
    const message = issue.path[0] === 'priority' ? PRIORITY_ACCEPTED : issue.message;
    const given = issue.path.length === 0 ? '' : ` (got ${JSON.stringify(valueAt(parameters, issue.path)) ?? 'nothing'})`;
    return fail(field, issue.path.length === 0 ? 'malformed' : 'unknownValue', `${issue.path.length === 0 ? `must be a ${CONFIG_KIND} object` : message}${given}`);
  }
  const p = parsed.data.priority;
  return ok({
    isolation: parsed.data.isolation ?? DEFAULT_GPU_CONFIG.isolation,
    priority: p === undefined ? DEFAULT_GPU_CONFIG.priority : typeof p === 'number' ? p : PRIORITY_LEVELS[p],
    computePolicy: parsed.data.computePolicy ?? DEFAULT_GPU_CONFIG.computePolicy,
  });
}

/**
 * Merges a claim's configs in the order the API server lists them (class configs first, then
 * the claim's own): later fields win, as the DRA API says of opaque configs.
 */
export function mergeGpuConfigs(configs: readonly unknown[]): Result<GpuConfig> {
  let merged: Record<string, unknown> = {};
  for (const c of configs) {
    const one = parseGpuConfig(c);
    if (!one.ok) return one;
    merged = { ...merged, ...(c as Record<string, unknown>) };
  }
  if (configs.length === 0) return ok(DEFAULT_GPU_CONFIG);
  return parseGpuConfig(merged);
}

/** The priority libgpushare understands (GPUSHARE_PRIORITY): three bands of the 0-1000 scale. */
export function libraryPriorityBand(priority: number): 'low' | 'normal' | 'high' {
  const betweenNormalAnd = (level: number): number => (PRIORITY_LEVELS.normal + level) / 2;
  if (priority >= betweenNormalAnd(PRIORITY_LEVELS.high)) return 'high';
  if (priority <= betweenNormalAnd(PRIORITY_LEVELS.low)) return 'low';
  return 'normal';
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let v = value;
  for (const key of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[key] : undefined;
  return v;
}
