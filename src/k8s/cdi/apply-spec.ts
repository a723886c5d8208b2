/**
 * Reading CDI specs as a container runtime does (github.com/cncf-tags/container-device-interface,
 * SPEC.md and specs-go/config.go): any vendor's spec, not only the ones gpushare writes, decoded
 * and validated at the boundary with the checks the runtime's CDI cache makes (kind and device
 * names, env entries, device-node types and permissions, hook names, mount paths). A spec that
 * fails them is refused with the field and the reason; the runtime would refuse it too.
 */
import { z } from 'zod';
import { fail, ok, type Result } from '../../domain/result.js';

/** The OCI hooks a CDI edit may name (CDI's validHookNames): when each runs is in apply-exec.ts. */
export const CDI_HOOK_NAMES = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type CdiHookName = (typeof CDI_HOOK_NAMES)[number];

const envEntry = z.string().refine((e) => e.indexOf('=') > 0, { message: 'an env entry is NAME=VALUE with a non-empty NAME' });

const deviceNode = z.strictObject({
  path: z.string().min(1, 'a device node needs its path in the container'),
  hostPath: z.string().optional(),
  type: z.enum(['', 'b', 'c', 'u', 'p'], { error: 'a device node\'s type is one of b, c, u, p (or empty: read from the host)' }).optional(),
  major: z.number().int().optional(),
  minor: z.number().int().optional(),
  fileMode: z.number().int().nonnegative().optional(),
  permissions: z.string().refine((p) => p === '' || p === 'none' || /^[rwm]+$/.test(p), { message: 'permissions are some of r, w, m, or "none"' }).optional(),
  uid: z.number().int().nonnegative().optional(),
  gid: z.number().int().nonnegative().optional(),
});

const mount = z.strictObject({
  hostPath: z.string().min(1, 'a mount needs its host path'),
  containerPath: z.string().min(1, 'a mount needs its container path'),
  options: z.array(z.string()).optional(),
  type: z.string().optional(),
});

const hook = z.strictObject({
  hookName: z.enum(CDI_HOOK_NAMES, { error: `a hook's name is one of ${CDI_HOOK_NAMES.join(', ')}` }),
  path: z.string().refine((p) => p.startsWith('/'), { message: 'a hook\'s path is absolute' }),
  args: z.array(z.string()).optional(),
  env: z.array(envEntry).optional(),
  timeout: z.number().int().positive('a hook\'s timeout is a positive number of seconds').optional(),
});

const containerEdits = z.strictObject({
  env: z.array(envEntry).optional(),
  deviceNodes: z.array(deviceNode).optional(),
  mounts: z.array(mount).optional(),
  hooks: z.array(hook).optional(),
  additionalGids: z.array(z.number().int().min(0).max(2 ** 32 - 1)).optional(),
  // Accepted so a valid spec decodes; the executor says it does not apply them (no resctrl, no network namespace).
  intelRdt: z.record(z.string(), z.unknown()).optional(),
  netDevices: z.array(z.strictObject({ hostInterfaceName: z.string(), name: z.string() })).optional(),
});

/** A CDI name (kind's name part, device name): alphanumeric at both ends, `-_.` and alphanumerics between. */
const CDI_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

const specSchema = z.strictObject({
  cdiVersion: z.string().regex(/^\d+\.\d+\.\d+$/, 'cdiVersion is a semantic version, e.g. 0.6.0'),
  kind: z.string().refine((k) => {
    const [vendor, name, ...rest] = k.split('/');
    return rest.length === 0 && vendor !== undefined && vendor.length <= 253 && DNS_SUBDOMAIN.test(vendor) && name !== undefined && name.length <= 63 && CDI_NAME.test(name);
  }, { message: 'kind is vendor/class: a DNS subdomain, a slash, and a name of at most 63 characters (e.g. gpushare.io/claim)' }),
  annotations: z.record(z.string(), z.string()).optional(),
  devices: z.array(z.strictObject({
    name: z.string().regex(CDI_NAME, 'a device name is alphanumeric at both ends, with -, _ and . between'),
    annotations: z.record(z.string(), z.string()).optional(),
    containerEdits: containerEdits,
  })).min(1, 'a spec defines at least one device'),
  containerEdits: containerEdits.optional(),
});

/** One set of container edits (a spec's own, or a device's), as decoded. */
export type CdiEdits = z.infer<typeof containerEdits>;

/** A decoded spec, with where it came from (for errors). */
export interface DecodedCdiSpec {
  readonly source: string;
  readonly kind: string;
  readonly cdiVersion: string;
  /** Applied once when any of the spec's devices is injected. */
  readonly edits: CdiEdits | undefined;
  readonly devices: readonly { readonly name: string; readonly edits: CdiEdits }[];
}

/** Decodes one spec file's JSON; `source` (its path) names it in errors. */
export function decodeCdiSpec(json: unknown, source: string): Result<DecodedCdiSpec> {
  const parsed = specSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : `.${issue.path.join('.')}`;
    return fail(`${source}${where}`, 'malformed', `is not a valid CDI spec: ${issue?.message ?? 'unreadable'}`);
  }
  const spec = parsed.data;
  const seen = new Set<string>();
  for (const d of spec.devices) {
    if (seen.has(d.name)) return fail(`${source}.devices`, 'conflict', `defines device ${d.name} twice`);
    seen.add(d.name);
  }
  return ok({
    source, kind: spec.kind, cdiVersion: spec.cdiVersion, edits: spec.containerEdits,
    devices: spec.devices.map((d) => ({ name: d.name, edits: d.containerEdits })),
  });
}

/** `vendor/class=name` split into its kind and device name, or null when it is not that form. */
export function parseCdiDeviceId(id: string): { readonly kind: string; readonly name: string } | null {
  const eq = id.indexOf('=');
  if (eq <= 0) return null;
  const kind = id.slice(0, eq);
  const name = id.slice(eq + 1);
  return kind.includes('/') && CDI_NAME.test(name) ? { kind, name } : null;
}

/** The edits a runtime applies for `ids`, in its order: each spec's own edits once (before its first device), then each device's. */
export function resolveCdiDevices(specs: readonly DecodedCdiSpec[], ids: readonly string[]): Result<CdiEdits[]> {
  const byId = new Map<string, { spec: DecodedCdiSpec; edits: CdiEdits }>();
  for (const spec of specs) {
    for (const d of spec.devices) {
      const id = `${spec.kind}=${d.name}`;
      const other = byId.get(id);
      if (other !== undefined) return fail(id, 'conflict', `is defined by both ${other.spec.source} and ${spec.source}`);
      byId.set(id, { spec, edits: d.edits });
    }
  }
  const unresolved = ids.filter((id) => !byId.has(id));
  if (unresolved.length > 0) {
    const known = [...byId.keys()].join(', ') || 'none';
    return fail('cdiDevices', 'unknownValue', `unresolvable CDI devices ${unresolved.join(', ')} (the specs define ${known})`);
  }
  const edits: CdiEdits[] = [];
  const specsDone = new Set<DecodedCdiSpec>();
  for (const id of ids) {
    const found = byId.get(id);
    if (found === undefined) continue;
    if (!specsDone.has(found.spec)) {
      specsDone.add(found.spec);
      if (found.spec.edits !== undefined) edits.push(found.spec.edits);
    }
    edits.push(found.edits);
  }
  return ok(edits);
}
