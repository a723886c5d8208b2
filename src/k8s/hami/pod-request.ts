/**
 * A pod written for HAMi, read into the scheduler's requests: one SliceRequest per container
 * that asks for GPUs. Pure: a V1Pod's JSON in, a Result out, every problem reported at once
 * with what was wrong and what is accepted.
 *
 * HAMi's semantics, kept so its pod specs mean the same here:
 * - `nvidia.com/gpu` N asks for a slice on each of N distinct GPUs; absent while another
 *   nvidia.com/* GPU resource is set, it is 1 (HAMi's defaultGPUNum).
 * - `nvidia.com/gpumem` is MiB per GPU, `nvidia.com/gpumem-percentage` a share of each GPU's
 *   memory; never both. Neither: the whole GPU's memory (HAMi's defaultMemory 0 = 100%).
 * - `nvidia.com/gpucores` is % of each GPU's compute; absent or 0: no compute limit (HAMi's
 *   defaultCores 0). 100 means the GPU alone: the slice is placed `exclusive`.
 * - `nvidia.com/priority` is HAMi-core's task priority (0 high, 1 low; default 1): it is not
 *   the scheduling priority, which is the pod's own `spec.priority` (its PriorityClass), the one
 *   preemption compares.
 * - Requests and limits: extended resources cannot be overcommitted, so Kubernetes makes them
 *   equal; a limit alone counts, and a request that differs from its limit is refused.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { type Issue, type Result, type Selector, type SliceRequest } from '../../domain/index.js';
import { ANNOTATION, DEFAULT_GPU_POLICY, DEFAULT_NODE_POLICY, KNOWN_RESOURCES, POLICIES, RESOURCE, RESOURCE_DOMAIN, type HamiPolicy } from './names.js';
import { parseWholeQuantity } from './quantity.js';

const MIB = 2 ** 20;
/** More GPUs than any node has is refused against the inventory; this only bounds nonsense. */
const MAX_GPUS = 64;

/** One container's ask. */
export interface ContainerRequest {
  readonly name: string;
  /** Position in spec.containers (what Allocate sees as the container's order). */
  readonly index: number;
  readonly slice: SliceRequest;
  /** HAMi's limits as written, for the node's enforcement: MiB or percent (null: whole GPU), cores % (0: none). */
  readonly memoryMiB: number | null;
  readonly memoryPercent: number | null;
  readonly coresPercent: number;
  /** HAMi-core's task priority: 0 high, 1 low. */
  readonly taskPriority: 0 | 1;
}

/** What a pod asks of the GPU scheduler. */
export interface PodGpuRequest {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly containers: readonly ContainerRequest[];
  readonly nodePolicy: HamiPolicy;
  readonly gpuPolicy: HamiPolicy;
  /** The pod's scheduling priority (spec.priority; 0 when unset), compared by preemption. */
  readonly priority: number;
  readonly priorityClassName: string | null;
}

/** Whether any container asks for an nvidia.com/* resource (the webhook's and extender's first question). */
export function asksForGpus(pod: V1Pod): boolean {
  for (const c of [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]) {
    for (const map of [c.resources?.limits, c.resources?.requests]) {
      if (map && Object.keys(map).some((k) => k.startsWith(RESOURCE_DOMAIN))) return true;
    }
  }
  return false;
}

/** The pod's GPU request; `value` null when it asks for no GPU at all. */
export function parsePodGpuRequest(pod: V1Pod): Result<PodGpuRequest | null> {
  const issues: Issue[] = [];
  const spec = pod.spec;
  if (spec === undefined || spec === null || !Array.isArray(spec.containers)) {
    return { ok: false, issues: [{ field: 'spec.containers', code: 'empty', message: 'is missing; expected a Pod with spec.containers' }] };
  }
  for (const [i, c] of (spec.initContainers ?? []).entries()) {
    const names = resourceNames(c.resources);
    if (names.length > 0) {
      issues.push({ field: `spec.initContainers[${i}].resources`, code: 'unknownValue', message: `asks for ${names.join(', ')}; GPU slices are given to spec.containers only, not to init containers` });
    }
  }
  const annotations = pod.metadata?.annotations ?? {};
  const models = parseSelectorAnnotations(annotations, ANNOTATION.useGpuType, ANNOTATION.noUseGpuType, MODEL_ENTRY, 'a GPU model such as A100 or H100-80GB', issues);
  const uuids = parseSelectorAnnotations(annotations, ANNOTATION.useGpuUuid, ANNOTATION.noUseGpuUuid, UUID_ENTRY, 'a GPU UUID such as GPU-4b3e6d1c-...', issues);
  const nodePolicy = parsePolicyAnnotation(annotations, ANNOTATION.nodePolicy, DEFAULT_NODE_POLICY, issues);
  const gpuPolicy = parsePolicyAnnotation(annotations, ANNOTATION.gpuPolicy, DEFAULT_GPU_POLICY, issues);
  const priority = typeof spec.priority === 'number' && Number.isInteger(spec.priority) ? spec.priority : 0;

  const containers: ContainerRequest[] = [];
  spec.containers.forEach((c, index) => {
    const r = parseContainer(c.name, index, c.resources, { models, uuids, priority }, issues);
    if (r !== null) containers.push(r);
  });
  if (issues.length > 0) return { ok: false, issues };
  if (containers.length === 0) return { ok: true, value: null };
  return {
    ok: true,
    value: {
      uid: pod.metadata?.uid ?? '',
      namespace: pod.metadata?.namespace ?? 'default',
      name: pod.metadata?.name ?? pod.metadata?.generateName ?? '',
      containers,
      nodePolicy,
      gpuPolicy,
      priority,
      priorityClassName: spec.priorityClassName ?? null,
    },
  };
}

type ResourceMaps = { limits?: Record<string, unknown>; requests?: Record<string, unknown> } | undefined | null;

function resourceNames(resources: ResourceMaps): string[] {
  const names = new Set<string>();
  for (const map of [resources?.limits, resources?.requests]) for (const k of Object.keys(map ?? {})) if (k.startsWith(RESOURCE_DOMAIN)) names.add(k);
  return [...names];
}

function parseContainer(
  name: string,
  index: number,
  resources: ResourceMaps,
  pod: { models: Selector; uuids: Selector; priority: number },
  issues: Issue[],
): ContainerRequest | null {
  const field = `spec.containers[${index}]${name ? ` (${name})` : ''}`;
  const before = issues.length;
  const values = new Map<string, number>();
  for (const key of resourceNames(resources)) {
    const f = `${field}.resources.${key}`;
    if (!KNOWN_RESOURCES.has(key)) {
      issues.push({ field: f, code: 'unknownValue', message: `is not a resource gpushare knows; expected one of ${[...KNOWN_RESOURCES].join(', ')}` });
      continue;
    }
    const limit = resources?.limits?.[key];
    const request = resources?.requests?.[key];
    const l = limit === undefined ? null : parseWholeQuantity(limit, `${f} (limits)`);
    const r = request === undefined ? null : parseWholeQuantity(request, `${f} (requests)`);
    for (const x of [l, r]) if (x !== null && !x.ok) issues.push(...x.issues);
    if (l?.ok && r?.ok && l.value !== r.value) {
      issues.push({ field: f, code: 'conflict', message: `requests ${r.value} but limits ${l.value}; an extended resource's request must equal its limit` });
      continue;
    }
    const v = l?.ok ? l.value : r?.ok ? r.value : null;
    if (v !== null) values.set(key, v);
  }
  // The values that did parse are checked too: every problem is reported at once.
  const count = values.get(RESOURCE.gpu);
  const mem = values.get(RESOURCE.gpumem);
  const pct = values.get(RESOURCE.gpumemPercentage);
  const cores = values.get(RESOURCE.gpucores);
  const taskPriority = values.get(RESOURCE.priority);
  const shaping = mem !== undefined || pct !== undefined || cores !== undefined;
  if (count === undefined && !shaping) {
    if (taskPriority !== undefined) issues.push({ field: `${field}.resources`, code: 'conflict', message: `sets ${RESOURCE.priority} but asks for no GPU; add ${RESOURCE.gpu}` });
    return null;
  }
  const gpus = count ?? 1;
  const bad = (key: string, code: Issue['code'], message: string): void => {
    issues.push({ field: `${field}.resources.${key}`, code, message });
  };
  if (gpus === 0) {
    if (shaping) bad(RESOURCE.gpu, 'zero', `is 0 but ${RESOURCE.gpumem}/${RESOURCE.gpumemPercentage}/${RESOURCE.gpucores} are set; ask for at least 1 GPU or drop them`);
    return null;
  }
  if (gpus > MAX_GPUS) bad(RESOURCE.gpu, 'outOfRange', `is ${gpus}; expected 1 to ${MAX_GPUS}`);
  if (mem !== undefined && pct !== undefined) bad(RESOURCE.gpumem, 'conflict', `and ${RESOURCE.gpumemPercentage} are both set; give the memory per GPU one way: MiB or a percentage`);
  if (mem === 0) bad(RESOURCE.gpumem, 'zero', 'is 0 MiB; expected the MiB of GPU memory per GPU (at least 1), or leave it out for the whole GPU');
  if (pct !== undefined && (pct < 1 || pct > 100)) bad(RESOURCE.gpumemPercentage, 'outOfRange', `is ${pct}; expected a percentage from 1 to 100`);
  if (cores !== undefined && cores > 100) bad(RESOURCE.gpucores, 'outOfRange', `is ${cores}; expected a percentage from 0 to 100 (0: no limit)`);
  if (taskPriority !== undefined && taskPriority > 1) bad(RESOURCE.priority, 'outOfRange', `is ${taskPriority}; expected 0 (high) or 1 (low)`);
  if (pod.uuids.include.length > 0 && pod.uuids.include.length < gpus) {
    issues.push({ field: ANNOTATION.useGpuUuid, code: 'conflict', message: `lists ${pod.uuids.include.length} GPU UUID(s) but ${field} asks for ${gpus} GPUs` });
  }
  if (issues.length > before) return null;
  const exclusive = cores === 100;
  const slice: SliceRequest = {
    gpus,
    memory: exclusive ? null : mem !== undefined ? { kind: 'bytes', bytes: mem * MIB } : pct !== undefined && pct < 100 ? { kind: 'fraction', fraction: pct / 100 } : null,
    compute: exclusive || cores === undefined || cores === 0 ? null : cores / 100,
    priority: pod.priority,
    isolation: exclusive ? 'exclusive' : 'time-slice',
    migProfile: null,
    models: pod.models,
    uuids: pod.uuids,
    numaNode: null,
  };
  return { name, index, slice, memoryMiB: mem ?? null, memoryPercent: pct ?? null, coresPercent: cores ?? 0, taskPriority: taskPriority === 0 ? 0 : 1 };
}

const MODEL_ENTRY = /^[A-Za-z0-9][A-Za-z0-9 ._+-]*$/;
const UUID_ENTRY = /^(GPU|MIG)-[A-Za-z0-9-]+$/;

function parseList(annotations: Record<string, string>, key: string, entry: RegExp, what: string, issues: Issue[]): string[] {
  const raw = annotations[key];
  if (raw === undefined) return [];
  const items = raw.split(',').map((s) => s.trim());
  if (items.every((s) => s === '')) {
    issues.push({ field: key, code: 'empty', message: `is empty; expected a comma-separated list, each ${what}` });
    return [];
  }
  const bad = items.find((s) => !entry.test(s));
  if (bad !== undefined) {
    issues.push({ field: key, code: 'malformed', message: `has ${bad === '' ? 'an empty entry' : `"${bad}"`}; expected a comma-separated list, each ${what}` });
    return [];
  }
  return items;
}

function parseSelectorAnnotations(annotations: Record<string, string>, useKey: string, noUseKey: string, entry: RegExp, what: string, issues: Issue[]): Selector {
  const include = parseList(annotations, useKey, entry, what, issues);
  const exclude = parseList(annotations, noUseKey, entry, what, issues);
  const both = include.find((s) => exclude.some((e) => e.toLowerCase() === s.toLowerCase()));
  if (both !== undefined) issues.push({ field: useKey, code: 'conflict', message: `and ${noUseKey} both name "${both}"` });
  return { include, exclude };
}

function parsePolicyAnnotation(annotations: Record<string, string>, key: string, fallback: HamiPolicy, issues: Issue[]): HamiPolicy {
  const raw = annotations[key];
  if (raw === undefined) return fallback;
  const v = raw.trim().toLowerCase();
  if ((POLICIES as readonly string[]).includes(v)) return v as HamiPolicy;
  issues.push({ field: key, code: 'unknownValue', message: `is "${raw}"; expected ${POLICIES.join(' or ')}` });
  return fallback;
}

