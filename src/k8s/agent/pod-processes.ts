/**
 * A pod's GPU processes, found through its slices' shared regions: every process libgpushare
 * attached to a region holds a slot there with its pid and start time. The pid is the one the
 * process has in its own pid namespace (a container's), so it is matched to the host's view
 * through /proc/<pid>/status NSpid (innermost id) and the start time (field 22 of stat, the same
 * in every namespace): a reused pid never matches. The agent suspends by process group (the
 * daemon's suspendGroup), so the answer is the groups those processes lead or belong to.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { readRegion } from '../../gpu/region/reader.js';
import type { PreparedClaim } from '../dra/prepare.js';

/** Where a pod's regions are on the host (the DRA claims it holds; the classic path's Allocate). */
export interface RegionLocator {
  regionsOf(pod: V1Pod): readonly string[];
}

/** A host process as /proc shows it. */
export interface HostProcess {
  readonly pid: number;
  readonly pgid: number;
  readonly startTime: number;
  /** The pid in the process's own (innermost) pid namespace. */
  readonly innerPid: number;
}

/** Reads one /proc entry; null when it ended or cannot be read. */
export function hostProcess(pid: number, procDir = '/proc'): HostProcess | null {
  try {
    const stat = readFileSync(join(procDir, String(pid), 'stat'), 'utf8');
    // Fields count from the last ')': the command name may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null;
    const status = readFileSync(join(procDir, String(pid), 'status'), 'utf8');
    const ns = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number) ?? [pid];
    return { pid, pgid: Number(fields[2]), startTime: Number(fields[19]), innerPid: ns[ns.length - 1] ?? pid };
  } catch {
    return null;
  }
}

/**
 * The host process that is region slot (`pid` in its namespace, `startTime`), or null: the
 * same-numbered host pid first (no pid namespace, the common test and bare-metal case), else a
 * scan of /proc.
 */
export function hostProcessOf(pid: number, startTime: number, procDir = '/proc'): HostProcess | null {
  const direct = hostProcess(pid, procDir);
  if (direct !== null && direct.startTime === startTime && direct.innerPid === pid) return direct;
  let names: string[];
  try {
    names = readdirSync(procDir);
  } catch {
    return null;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const p = hostProcess(Number(name), procDir);
    if (p !== null && p.innerPid === pid && p.startTime === startTime) return p;
  }
  return null;
}

/** What was found of a pod's GPU processes. */
export interface PodProcesses {
  /** Process groups holding at least one attached process, ascending. */
  readonly pgids: readonly number[];
  /** Regions that could not be read, with why (a pod whose container never started has none). */
  readonly unreadable: readonly { readonly path: string; readonly error: string }[];
}

/** The process groups of every live process attached to `regions`. */
export function podProcessGroups(regions: readonly string[], procDir = '/proc'): PodProcesses {
  const pgids = new Set<number>();
  const unreadable: { path: string; error: string }[] = [];
  for (const path of regions) {
    let slots;
    try {
      slots = readRegion(path).slots;
    } catch (e) {
      unreadable.push({ path, error: (e as Error).message });
      continue;
    }
    for (const slot of slots) {
      if (slot.state !== 'active') continue;
      const p = hostProcessOf(slot.pid, slot.startTime, procDir);
      if (p !== null) pgids.add(p.pgid);
    }
  }
  return { pgids: [...pgids].sort((a, b) => a - b), unreadable };
}

/**
 * The DRA side's regions: a pod's claims (status.resourceClaimStatuses name the ResourceClaim
 * each pod claim became) that this node's kubelet plugin prepared, each with its region in the
 * claim's directory (`<stateDir>/claims/<uid>/region`, CONTAINER_PATHS.claimDir inside).
 */
export function draRegionLocator(prepared: () => readonly PreparedClaim[], stateDir: string): RegionLocator {
  return {
    regionsOf(pod: V1Pod): readonly string[] {
      const namespace = pod.metadata?.namespace ?? 'default';
      const names = new Set((pod.status?.resourceClaimStatuses ?? []).map((s) => s.resourceClaimName).filter((n): n is string => typeof n === 'string' && n !== ''));
      if (names.size === 0) return [];
      return prepared().filter((c) => c.namespace === namespace && names.has(c.name)).map((c) => claimRegion(stateDir, c));
    },
  };
}

/** Where a prepared claim's region is on the host. */
export function claimRegion(stateDir: string, claim: Pick<PreparedClaim, 'uid'>): string {
  return join(stateDir, 'claims', claim.uid, 'region');
}

/** Several locators as one: a pod may hold slices of both paths. */
export function combinedLocator(locators: readonly RegionLocator[]): RegionLocator {
  return { regionsOf: (pod) => [...new Set(locators.flatMap((l) => l.regionsOf(pod)))] };
}
