/**
 * The mutating admission webhook for pods (admission.k8s.io/v1 AdmissionReview, JSONPatch).
 *
 * A pod that asks for nvidia.com/* GPU resources:
 * - is refused (allowed: false, a status message naming every problem) when its request is
 *   malformed (hami/pod-request.ts) or can never fit the cluster as the view knows it (more
 *   memory per GPU than the largest GPU its selectors allow, more GPUs than any node has);
 * - is routed to the extender-backed scheduler: spec.schedulerName is set when it is absent or
 *   `default-scheduler`; a pod that names another scheduler keeps it (someone chose it on
 *   purpose) and the response carries a warning that gpushare will not place it;
 * - gets HAMi's defaults written out: `nvidia.com/gpu: 1` where only memory or cores were given
 *   (HAMi's defaultGPUNum), and the memory per GPU where none was given (`defaultMemoryMiB`
 *   when configured, as HAMi's defaultMemory, else `nvidia.com/gpumem-percentage: 100`, the
 *   whole GPU), in limits and in requests, so what the pod holds is visible on it.
 * Any other pod, and any operation but CREATE, is allowed unchanged.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { formatBytes, matchesSelectors, type Gpu, type Issue } from '../../domain/index.js';
import type { NodeSpec } from '../../scheduler/index.js';
import { RESOURCE } from '../hami/names.js';
import { asksForGpus, parsePodGpuRequest, type PodGpuRequest } from '../hami/pod-request.js';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface WebhookOptions {
  /** The scheduler profile whose extender is gpushare's (default `gpushare-scheduler`). */
  readonly schedulerName?: string;
  /** MiB per GPU given to a pod that names no memory (HAMi's defaultMemory); 0 or absent: the whole GPU. */
  readonly defaultMemoryMiB?: number;
}

/** The GPU nodes as the extender's view knows them (empty while it has not synced). */
export type Inventory = () => readonly NodeSpec[];

export interface JsonPatchOp {
  readonly op: 'add' | 'replace';
  readonly path: string;
  readonly value: unknown;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; reason: string; message: string; status: 'Failure' };
  patchType?: 'JSONPatch';
  patch?: string;
  warnings?: string[];
}

export interface AdmissionReviewOut {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

export interface AdmissionRequestIn {
  readonly uid: string;
  readonly kind: { readonly group: string; readonly version: string; readonly kind: string };
  readonly operation: string;
  readonly namespace?: string | undefined;
  readonly object?: unknown;
}

/** The review's answer for one request. */
export function admit(request: AdmissionRequestIn, inventory: Inventory, options: WebhookOptions = {}): AdmissionReviewOut {
  const out = (response: Omit<AdmissionResponse, 'uid'>): AdmissionReviewOut => ({ apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid: request.uid, ...response } });
  const isPod = request.kind.group === '' && request.kind.version === 'v1' && request.kind.kind === 'Pod';
  if (!isPod || request.operation !== 'CREATE' || typeof request.object !== 'object' || request.object === null) return out({ allowed: true });
  const pod = request.object as V1Pod;
  if (!asksForGpus(pod)) return out({ allowed: true });
  const parsed = parsePodGpuRequest(pod);
  const issues: Issue[] = parsed.ok ? (parsed.value === null ? [] : checkAgainstInventory(parsed.value, inventory())) : [...parsed.issues];
  if (issues.length > 0) {
    const message = `gpushare: pod ${podName(pod, request)} cannot be scheduled: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`;
    return out({ allowed: false, status: { status: 'Failure', code: 422, reason: 'Invalid', message } });
  }
  const { ops, warnings } = mutations(pod, options);
  return out({
    allowed: true,
    ...(ops.length > 0 ? { patchType: 'JSONPatch' as const, patch: Buffer.from(JSON.stringify(ops)).toString('base64') } : {}),
    ...(warnings.length > 0 ? { warnings } : {}),
  });
}

/** The JSONPatch that routes the pod and writes HAMi's defaults out. */
export function mutations(pod: V1Pod, options: WebhookOptions = {}): { ops: JsonPatchOp[]; warnings: string[] } {
  const ops: JsonPatchOp[] = [];
  const warnings: string[] = [];
  const scheduler = options.schedulerName ?? 'gpushare-scheduler';
  const current = pod.spec?.schedulerName;
  if (current === undefined || current === '' || current === 'default-scheduler') {
    ops.push({ op: current === undefined ? 'add' : 'replace', path: '/spec/schedulerName', value: scheduler });
  } else if (current !== scheduler) {
    warnings.push(`gpushare: spec.schedulerName is ${current}, so gpushare's extender (${scheduler}) will not place this pod's GPU slices`);
  }
  const defaultMiB = options.defaultMemoryMiB ?? 0;
  (pod.spec?.containers ?? []).forEach((c, i) => {
    const limits = c.resources?.limits ?? {};
    const requests = c.resources?.requests;
    const has = (k: string): boolean => k in limits || (requests !== undefined && k in requests);
    const gpuNames = [RESOURCE.gpu, RESOURCE.gpumem, RESOURCE.gpumemPercentage, RESOURCE.gpucores];
    if (!gpuNames.some(has)) return;
    const add: [string, string][] = [];
    if (!has(RESOURCE.gpu)) add.push([RESOURCE.gpu, '1']);
    if (!has(RESOURCE.gpumem) && !has(RESOURCE.gpumemPercentage)) add.push(defaultMiB > 0 ? [RESOURCE.gpumem, String(defaultMiB)] : [RESOURCE.gpumemPercentage, '100']);
    if (add.length === 0) return;
    const base = `/spec/containers/${i}/resources`;
    if (c.resources === undefined) ops.push({ op: 'add', path: base, value: {} });
    for (const [field, map] of [['limits', c.resources?.limits], ['requests', requests]] as const) {
      if (map === undefined) ops.push({ op: 'add', path: `${base}/${field}`, value: Object.fromEntries(add) });
      else for (const [k, v] of add) ops.push({ op: 'add', path: `${base}/${field}/${escapePointer(k)}`, value: v });
    }
  });
  return { ops, warnings };
}

/** Problems no node of the cluster could ever solve; none while the inventory is empty (not synced yet). */
export function checkAgainstInventory(request: PodGpuRequest, nodes: readonly NodeSpec[]): Issue[] {
  if (nodes.length === 0) return [];
  const issues: Issue[] = [];
  for (const c of request.containers) {
    const field = `spec.containers[${c.index}] (${c.name})`;
    let maxGpus = 0;
    let largest = 0;
    let largestModel = '';
    for (const n of nodes) {
      let here = 0;
      for (const g of n.gpus) {
        // matchesSelectors reads model, name, uuid and numaNode, which a GpuSpec has as a Gpu does.
        if (!matchesSelectors(c.slice, g as unknown as Gpu)) continue;
        here++;
        if (g.memoryBytes > largest) {
          largest = g.memoryBytes;
          largestModel = g.model;
        }
      }
      maxGpus = Math.max(maxGpus, here);
    }
    if (maxGpus === 0) {
      issues.push({ field, code: 'exceedsCapacity', message: `no GPU in the cluster matches the pod's nvidia.com/use-gputype/nouse-gputype/use-gpuuuid/nouse-gpuuuid (models here: ${[...new Set(nodes.flatMap((n) => n.gpus.map((g) => g.model)))].join(', ')})` });
      continue;
    }
    if (c.slice.gpus > maxGpus) issues.push({ field: `${field}.resources.${RESOURCE.gpu}`, code: 'exceedsCapacity', message: `asks for ${c.slice.gpus} GPUs but no node has more than ${maxGpus} that match` });
    const mem = c.slice.memory;
    if (mem?.kind === 'bytes' && mem.bytes > largest) {
      issues.push({ field: `${field}.resources.${RESOURCE.gpumem}`, code: 'exceedsCapacity', message: `asks for ${formatBytes(mem.bytes)} per GPU but the largest matching GPU (${largestModel}) has ${formatBytes(largest)}` });
    }
  }
  return issues;
}

/** RFC 6901: `nvidia.com/gpu` is the JSON pointer token `nvidia.com~1gpu`. */
function escapePointer(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

function podName(pod: V1Pod, request: AdmissionRequestIn): string {
  const name = pod.metadata?.name ?? (pod.metadata?.generateName ? `${pod.metadata.generateName}*` : '(unnamed)');
  return `${request.namespace ?? pod.metadata?.namespace ?? 'default'}/${name}`;
}
