/**
 * The pods' slices on this node as the monitor samples them (Kubernetes mode): each container
 * the classic device plugin served and each claim the DRA plugin prepared, with the GPUs it
 * holds and what its region says now. The region is the truth for limits and usage alike:
 * libgpushare writes the slice's limits there at the container's first CUDA call and counts
 * every byte its processes hold, so a slice's memory equals the region's accounting to the byte.
 * A slice whose region does not exist yet (no process used CUDA) shows the limits its path
 * decided, or, where the path does not keep them (the classic ledger), appears at its first call.
 */
import { existsSync } from 'node:fs';
import type { V1Pod } from '@kubernetes/client-node';
import type { Gpu } from '../../domain/gpu.js';
import { readRegion, usageByDevice } from '../../gpu/region/index.js';
import type { MonitoredContainer } from '../../monitor/sampler.js';
import type { PreparedClaim } from '../dra/prepare.js';

/** Who holds a region on this node, and the GPUs it holds by CUDA ordinal. */
export interface PodSliceOwner {
  readonly namespace: string;
  readonly pod: string;
  readonly container: string;
  /** The pod's uid where known (its suspension is looked up by it). */
  readonly podUid?: string;
  /** GPU uuids by CUDA ordinal inside the container (CUDA_VISIBLE_DEVICES' order). */
  readonly gpus: readonly string[];
  readonly region: string;
  /** The slice per ordinal as the path decided it, for a region not created yet; absent: unknown. */
  readonly decided?: readonly { readonly memoryBytes: number; readonly computeLimitPercent: number | null }[];
}

/**
 * Reads each owner's region: its slices with their limits and usage. An unreadable region is
 * skipped (a torn file is read again next time). `suspended`: whether a pod is suspended now.
 */
export function readPodSlices(owners: readonly PodSliceOwner[], gpus: readonly Gpu[], suspended: (podUid: string) => boolean = () => false): MonitoredContainer[] {
  const byUuid = new Map(gpus.map((g) => [g.uuid, g]));
  const out: MonitoredContainer[] = [];
  for (const o of owners) {
    let snapshot = null;
    if (existsSync(o.region)) {
      try {
        snapshot = readRegion(o.region);
      } catch {
        continue;
      }
    } else if (o.decided === undefined) continue;
    const held = o.gpus.map((uuid, ordinal) => {
      const gpu = byUuid.get(uuid);
      const limits = snapshot?.limits.find((l) => l.device === ordinal);
      const decided = o.decided?.[ordinal];
      // A region's unlimited memory is the whole GPU's.
      const memoryLimitBytes = limits !== undefined ? (limits.memoryLimitBytes ?? gpu?.memoryTotalBytes ?? 0) : (decided?.memoryBytes ?? gpu?.memoryTotalBytes ?? 0);
      const computeLimitPercent = limits !== undefined ? limits.computeLimitPercent : (decided?.computeLimitPercent ?? null);
      return { uuid, index: gpu?.index ?? -1, memoryLimitBytes, computeLimitPercent };
    });
    out.push({ namespace: o.namespace, pod: o.pod, container: o.container, suspended: o.podUid !== undefined && suspended(o.podUid), gpus: held, usage: snapshot === null ? null : usageByDevice(snapshot.slots) });
  }
  return out;
}

/**
 * The DRA side's owners: each prepared claim with the pod (and its containers) that use it,
 * found in the node's pods (status.resourceClaimStatuses names the ResourceClaim a pod claim
 * became; a container's resources.claims names the pod claims it uses). One slice set per
 * claim, however many containers share it (they share its region): `container` lists them
 * comma-separated; a claim no known pod uses yet shows pod and container empty.
 */
export function draOwners(prepared: readonly PreparedClaim[], regionOf: (claim: PreparedClaim) => string, pods: readonly V1Pod[]): PodSliceOwner[] {
  return prepared.map((claim) => {
    let pod = '';
    let podUid: string | undefined;
    let container = '';
    for (const p of pods) {
      if ((p.metadata?.namespace ?? 'default') !== claim.namespace) continue;
      const podClaim = (p.status?.resourceClaimStatuses ?? []).find((s) => s.resourceClaimName === claim.name)?.name;
      if (podClaim === undefined) continue;
      pod = p.metadata?.name ?? '';
      podUid = p.metadata?.uid;
      container = (p.spec?.containers ?? []).filter((c) => (c.resources?.claims ?? []).some((r) => r.name === podClaim)).map((c) => c.name).join(',');
      break;
    }
    // A claim's devices may be several shares of one GPU: the container sees each GPU once.
    const uuids = [...new Set(claim.devices.map((d) => d.gpuUuid))];
    const decided = uuids.map((uuid) => {
      const on = claim.devices.filter((d) => d.gpuUuid === uuid);
      const cores = Math.min(100, on.reduce((sum, d) => sum + d.cores, 0));
      return { memoryBytes: on.reduce((sum, d) => sum + d.memoryBytes, 0), computeLimitPercent: cores > 0 && cores < 100 ? cores : null };
    });
    return { namespace: claim.namespace, pod, ...(podUid !== undefined ? { podUid } : {}), container, gpus: uuids, region: regionOf(claim), decided };
  });
}
