/**
 * The devices the plugin advertises for `nvidia.com/gpu`, pure: each GPU `split` times as
 * `<GPU-UUID>::<n>` (HAMi's deviceSplitCount replicas; the UUID prefix lets dcgm-exporter map a
 * pod to its GPU), their health and NUMA node, and which replicas to prefer for a container.
 * A replica is only a ticket the kubelet counts: the slice a container gets is the extender's
 * decision, whatever replica IDs the kubelet hands out.
 */
import type { Gpu } from '../../domain/gpu.js';
import { fail, ok, type Issue, type Result } from '../../domain/result.js';
import { HEALTHY, UNHEALTHY } from './protos.js';

/** HAMi's default deviceSplitCount: how many containers may share one GPU. */
export const DEFAULT_SPLIT = 10;
/** The most replicas per GPU: the kubelet lists every ID in every ListAndWatch message. */
export const MAX_SPLIT = 1024;

const SEPARATOR = '::';

export function deviceId(gpuUuid: string, replica: number): string {
  return `${gpuUuid}${SEPARATOR}${replica}`;
}

/** One advertised device as ListAndWatch sends it. */
export interface AdvertisedDevice {
  readonly ID: string;
  readonly health: typeof HEALTHY | typeof UNHEALTHY;
  /** Absent where the GPU's NUMA node is unknown (the kubelet's topology manager then ignores it). */
  readonly topology?: { readonly nodes: readonly { readonly ID: number }[] };
}

/** Every replica of every GPU, in GPU order; a lost GPU's replicas are Unhealthy (the kubelet stops counting them). */
export function advertisedDevices(gpus: readonly Gpu[], split: number): AdvertisedDevice[] {
  return gpus.flatMap((gpu) => Array.from({ length: split }, (_, n) => ({
    ID: deviceId(gpu.uuid, n),
    health: gpu.health === 'ok' ? HEALTHY : UNHEALTHY,
    ...(gpu.numaNode === null || gpu.numaNode < 0 ? {} : { topology: { nodes: [{ ID: gpu.numaNode }] } }),
  })));
}

/** A split count from configuration: a whole number from 1 to MAX_SPLIT. */
export function checkSplit(split: number): Result<number> {
  if (!Number.isInteger(split) || split < 1 || split > MAX_SPLIT) return fail('split', 'outOfRange', `is ${split}; expected a whole number of replicas per GPU from 1 to ${MAX_SPLIT} (HAMi's deviceSplitCount, default ${DEFAULT_SPLIT})`);
  return ok(split);
}

/** A device ID read back: the GPU it is a replica of. */
export interface Replica {
  readonly id: string;
  readonly gpu: Gpu;
  readonly replica: number;
}

/**
 * The replicas the kubelet names, each checked against this node's GPUs and split: an ID we
 * never advertised (another plugin's, a GPU gone, a replica past the split) is an error naming it.
 */
export function resolveDeviceIds(ids: readonly string[], gpus: readonly Gpu[], split: number): Result<Replica[]> {
  const byUuid = new Map(gpus.map((g) => [g.uuid, g]));
  const replicas: Replica[] = [];
  const issues: Issue[] = [];
  const seen = new Set<string>();
  for (const id of ids) {
    const at = id.lastIndexOf(SEPARATOR);
    const gpu = at < 0 ? undefined : byUuid.get(id.slice(0, at));
    const n = at < 0 ? NaN : Number(id.slice(at + SEPARATOR.length));
    if (gpu === undefined || !/^\d+$/.test(id.slice(at + SEPARATOR.length)) || n >= split) {
      issues.push({ field: `device ${JSON.stringify(id)}`, code: 'unknownValue', message: `is not a device this plugin advertises; expected <GPU-UUID>::<0-${split - 1}> of this node's GPUs (${gpus.map((g) => g.uuid).join(', ') || 'none'})` });
      continue;
    }
    if (seen.has(id)) {
      issues.push({ field: `device ${JSON.stringify(id)}`, code: 'conflict', message: 'is named twice in one request' });
      continue;
    }
    seen.add(id);
    replicas.push({ id, gpu, replica: n });
  }
  return issues.length > 0 ? { ok: false, issues } : ok(replicas);
}

/** The GPUs of a set of device IDs, each once, in the order first named (unknown IDs skipped). */
export function gpusOfIds(ids: readonly string[]): string[] {
  return [...new Set(ids.map((id) => (id.includes(SEPARATOR) ? id.slice(0, id.lastIndexOf(SEPARATOR)) : id)))];
}

/**
 * Which `size` of the `available` replicas a container should get. `must` come first (the
 * kubelet requires them); then one replica of each of `wanted`'s GPUs (the extender's decision
 * for the container being admitted), then the rest spread: a replica of the GPU with the most
 * replicas still available among those not yet picked (HAMi gives a container's GPUs on
 * distinct cards), lowest replica number first so the choice is stable.
 */
export function preferredReplicas(available: readonly string[], must: readonly string[], size: number, wanted: readonly string[]): string[] {
  const picked: string[] = [...new Set(must)].slice(0, Math.max(size, must.length));
  const left = (): string[] => available.filter((id) => !picked.includes(id));
  const usedGpus = (): Set<string> => new Set(gpusOfIds(picked));
  for (const uuid of wanted) {
    if (picked.length >= size) break;
    if (usedGpus().has(uuid)) continue;
    const id = left().filter((a) => gpusOfIds([a])[0] === uuid).sort(byReplica)[0];
    if (id !== undefined) picked.push(id);
  }
  while (picked.length < size) {
    const free = left();
    if (free.length === 0) break;
    const count = new Map<string, number>();
    for (const id of free) count.set(gpusOfIds([id])[0] ?? '', (count.get(gpusOfIds([id])[0] ?? '') ?? 0) + 1);
    const used = usedGpus();
    const gpus = [...count.entries()].sort(([a, x], [b, y]) => Number(used.has(a)) - Number(used.has(b)) || y - x || (a < b ? -1 : 1));
    const gpu = gpus[0]?.[0];
    const id = free.filter((a) => gpusOfIds([a])[0] === gpu).sort(byReplica)[0];
    if (id === undefined) break;
    picked.push(id);
  }
  return picked;
}

function byReplica(a: string, b: string): number {
  return Number(a.slice(a.lastIndexOf(SEPARATOR) + 2)) - Number(b.slice(b.lastIndexOf(SEPARATOR) + 2));
}
