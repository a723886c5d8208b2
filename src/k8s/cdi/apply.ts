/**
 * A container's process as the container runtime would start it, built by pure functions: the
 * image's environment, the device plugin's Allocate answer and the pod's own env as the kubelet
 * hands them over, then the CDI devices' edits applied the way the CDI library applies them to
 * the OCI spec (pkg/cdi/container-edits.go's semantics, written from its documentation):
 *
 * - env: an edit `NAME=VALUE` replaces the entry of the same NAME where it stands, else is
 *   appended; later edits win.
 * - deviceNodes: an edit replaces any device at the same container path; `hostPath` defaults to
 *   `path`; cgroup permissions default to `rwm`, and `none` means none.
 * - mounts: an edit replaces any mount at the same container path, then all mounts are sorted,
 *   stably, by the depth of their container path (parents before what is mounted inside them).
 * - hooks: kept by phase, in order; additionalGids: appended once each, 0 ignored.
 *
 * The executor (apply-exec.ts) performs a plan; apply-allocate.ts decodes an Allocate answer.
 */
import { fail, ok, type Result } from '../../domain/result.js';
import type { ContainerAllocateResponse } from './apply-allocate.js';
import { resolveCdiDevices, type CdiEdits, type CdiHookName, type DecodedCdiSpec } from './apply-spec.js';

/**
 * What a container starts from before any device: an image's environment. A bare image has
 * only these (the OCI image spec's usual PATH, and HOME for root); the caller passes its image's.
 */
export const DEFAULT_IMAGE_ENV: readonly string[] = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'];

export interface PlanMount {
  readonly source: string;
  readonly destination: string;
  /** `bind` for binds (CDI allows a dummy type with a bind/rbind option too). */
  readonly type: string;
  readonly options: readonly string[];
}

export interface PlanDeviceNode {
  readonly path: string;
  readonly hostPath: string;
  /** As given; empty: read from the host node when it is checked. */
  readonly type: string;
  readonly major: number | null;
  readonly minor: number | null;
  readonly fileMode: number | null;
  /** Cgroup permissions, some of r, w, m ('' for none). */
  readonly permissions: string;
  readonly uid: number | null;
  readonly gid: number | null;
}

export interface PlanHook {
  readonly path: string;
  /** argv, argv[0] included (empty: the path). */
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly timeoutSeconds: number | null;
}

/** The process a runtime would start: what to run, with what, after which mounts, devices and hooks. */
export interface ProcessPlan {
  readonly argv: readonly string[];
  /** NAME=VALUE, in order: exactly the process's environment. */
  readonly env: readonly string[];
  readonly mounts: readonly PlanMount[];
  readonly deviceNodes: readonly PlanDeviceNode[];
  readonly hooks: Readonly<Record<CdiHookName, readonly PlanHook[]>>;
  readonly additionalGids: readonly number[];
  /** Container annotations (the device plugin's), for the runtime. */
  readonly annotations: Readonly<Record<string, string>>;
  /** Edits a runtime would apply that this plan cannot carry out (intelRdt, netDevices): listed, never silently dropped. */
  readonly unsupported: readonly string[];
}

/** A plan with no device yet: the command and its image's environment. */
export function baseProcess(argv: readonly string[], imageEnv: readonly string[] = DEFAULT_IMAGE_ENV): Result<ProcessPlan> {
  if (argv.length === 0 || argv[0] === '') return fail('argv', 'empty', 'a container runs a command: give at least the program');
  const bad = imageEnv.find((e) => e.indexOf('=') <= 0);
  if (bad !== undefined) return fail('imageEnv', 'malformed', `"${bad}" is not NAME=VALUE`);
  const hooks = { prestart: [], createRuntime: [], createContainer: [], startContainer: [], poststart: [], poststop: [] };
  return ok({ argv, env: mergeEnv([], imageEnv), mounts: [], deviceNodes: [], hooks, additionalGids: [], annotations: {}, unsupported: [] });
}

/** `env` with `edits` applied: same NAME replaced in place, new ones appended. */
export function mergeEnv(env: readonly string[], edits: readonly string[]): string[] {
  const out = [...env];
  const at = new Map(out.map((e, i) => [envName(e), i]));
  for (const e of edits) {
    const i = at.get(envName(e));
    if (i === undefined) {
      at.set(envName(e), out.length);
      out.push(e);
    } else {
      out[i] = e;
    }
  }
  return out;
}

function envName(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** Applies one set of CDI container edits to a plan, as the CDI library edits an OCI spec. */
export function applyEdits(plan: ProcessPlan, edits: CdiEdits): ProcessPlan {
  let deviceNodes = [...plan.deviceNodes];
  for (const d of edits.deviceNodes ?? []) {
    deviceNodes = deviceNodes.filter((x) => x.path !== d.path);
    deviceNodes.push({
      path: d.path, hostPath: d.hostPath || d.path, type: d.type ?? '', major: d.major ?? null, minor: d.minor ?? null, fileMode: d.fileMode ?? null,
      permissions: d.permissions === undefined || d.permissions === '' ? 'rwm' : d.permissions === 'none' ? '' : d.permissions,
      uid: d.uid ?? null, gid: d.gid ?? null,
    });
  }
  let mounts = [...plan.mounts];
  for (const m of edits.mounts ?? []) {
    mounts = mounts.filter((x) => x.destination !== m.containerPath);
    mounts.push({ source: m.hostPath, destination: m.containerPath, type: m.type ?? '', options: m.options ?? [] });
  }
  if ((edits.mounts ?? []).length > 0) mounts = sortMounts(mounts);
  const hooks = { ...plan.hooks };
  for (const h of edits.hooks ?? []) {
    hooks[h.hookName] = [...hooks[h.hookName], { path: h.path, args: h.args ?? [], env: h.env ?? [], timeoutSeconds: h.timeout ?? null }];
  }
  const additionalGids = [...plan.additionalGids];
  for (const g of edits.additionalGids ?? []) if (g !== 0 && !additionalGids.includes(g)) additionalGids.push(g);
  const unsupported = [...plan.unsupported];
  if (edits.intelRdt !== undefined) unsupported.push('intelRdt (resctrl class of service)');
  for (const n of edits.netDevices ?? []) unsupported.push(`netDevices ${n.hostInterfaceName} -> ${n.name}`);
  return { ...plan, env: mergeEnv(plan.env, edits.env ?? []), deviceNodes, mounts, hooks, additionalGids, unsupported };
}

/** Stable sort by the number of separators in the cleaned container path (CDI's, CRI-O's and Docker's order). */
function sortMounts(mounts: readonly PlanMount[]): PlanMount[] {
  const depth = (p: string): number => (cleanPath(p).match(/\//g) ?? []).length;
  return mounts.map((m, i) => ({ m, i, d: depth(m.destination) })).sort((a, b) => a.d - b.d || a.i - b.i).map((x) => x.m);
}

/** A path with repeated and trailing separators and `.` parts removed (enough for depth: `..` is refused by the executor). */
function cleanPath(p: string): string {
  const parts = p.split('/').filter((s) => s !== '' && s !== '.');
  return `${p.startsWith('/') ? '/' : ''}${parts.join('/')}`;
}

/** Applies CDI devices by their qualified ids (`vendor/class=name`), resolved through `specs`. */
export function injectCdiDevices(plan: ProcessPlan, specs: readonly DecodedCdiSpec[], ids: readonly string[]): Result<ProcessPlan> {
  const resolved = resolveCdiDevices(specs, ids);
  if (!resolved.ok) return resolved;
  return ok(resolved.value.reduce(applyEdits, plan));
}

/** Everything the kubelet hands the runtime for one container. */
export interface ContainerStart {
  readonly argv: readonly string[];
  /** The image's environment (its config's Env); default DEFAULT_IMAGE_ENV. */
  readonly imageEnv?: readonly string[];
  /** The pod spec's env for the container, NAME=VALUE. */
  readonly containerEnv?: readonly string[];
  /** The device plugins' Allocate answers for this container (classic path). */
  readonly allocate?: readonly ContainerAllocateResponse[];
  /** CDI device ids from DRA (NodePrepareResources' cdi_device_ids). */
  readonly cdiDevices?: readonly string[];
}

/**
 * The container's process as kubelet + containerd would start it. The kubelet puts the device
 * plugins' envs before the pod's own (so the pod's win) and their mounts and devices in the CRI
 * config; the runtime then starts from the image env, sets the CRI env, adds the mounts
 * (`read_only` -> ro) and devices, and injects every CDI device (DRA's and the plugins'
 * `cdi_devices`) last, so CDI edits win over both.
 */
export function containerProcess(start: ContainerStart, specs: readonly DecodedCdiSpec[]): Result<ProcessPlan> {
  const base = baseProcess(start.argv, start.imageEnv);
  if (!base.ok) return base;
  const allocate = start.allocate ?? [];
  const badEnv = (start.containerEnv ?? []).find((e) => e.indexOf('=') <= 0);
  if (badEnv !== undefined) return fail('containerEnv', 'malformed', `"${badEnv}" is not NAME=VALUE`);
  const criEnv = [...allocate.flatMap((a) => Object.entries(a.envs).map(([k, v]) => `${k}=${v}`)), ...(start.containerEnv ?? [])];
  let plan: ProcessPlan = { ...base.value, env: mergeEnv(base.value.env, criEnv) };
  for (const a of allocate) {
    plan = applyEdits(plan, {
      mounts: a.mounts.map((m) => ({ hostPath: m.host_path, containerPath: m.container_path, type: 'bind', options: ['rbind', m.read_only ? 'ro' : 'rw'] })),
      deviceNodes: a.devices.map((d) => ({ path: d.container_path, hostPath: d.host_path, permissions: d.permissions })),
    });
    plan = { ...plan, annotations: { ...plan.annotations, ...a.annotations } };
  }
  const ids = [...(start.cdiDevices ?? []), ...allocate.flatMap((a) => a.cdi_devices.map((c) => c.name))];
  return ids.length === 0 ? ok(plan) : injectCdiDevices(plan, specs, ids);
}
