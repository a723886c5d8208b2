/**
 * RBAC of least privilege, derived from the code: the API calls each component's source makes
 * (client-node API methods, and the paths it watches) are listed here by scanning src/k8s, each
 * mapped to the (group, resource, verb) the API server authorizes, and the chart's ClusterRole
 * for that component must grant exactly that set: a call the role lacks fails (the component
 * would get 403s in a cluster), and so does a grant no code uses. A client-node method this
 * table does not know fails too, so a new kind of call cannot slip past the check.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import type { V1ClusterRole, V1ClusterRoleBinding, V1Role, V1RoleBinding } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DEFAULT_NAMESPACE, documents, renderChart } from './deploy-render.js';

type Grant = `${string}|${string}|${string}`;

/** client-node methods -> what the API server checks: [apiGroup, resource(/subresource), verb]. */
const API_CALLS: Record<string, [string, string, string]> = {
  readNamespacedPod: ['', 'pods', 'get'],
  listPodForAllNamespaces: ['', 'pods', 'list'],
  listNamespacedPod: ['', 'pods', 'list'],
  patchNamespacedPod: ['', 'pods', 'patch'],
  replaceNamespacedPod: ['', 'pods', 'update'],
  deleteNamespacedPod: ['', 'pods', 'delete'],
  createNamespacedPodBinding: ['', 'pods/binding', 'create'],
  createNamespacedPodEviction: ['', 'pods/eviction', 'create'],
  patchNamespacedPodStatus: ['', 'pods/status', 'patch'],
  readNode: ['', 'nodes', 'get'],
  listNode: ['', 'nodes', 'list'],
  patchNode: ['', 'nodes', 'patch'],
  patchNodeStatus: ['', 'nodes/status', 'patch'],
  replaceNode: ['', 'nodes', 'update'],
  createNamespacedEvent: ['', 'events', 'create'],
  readNamespacedResourceClaim: ['resource.k8s.io', 'resourceclaims', 'get'],
  listResourceClaimForAllNamespaces: ['resource.k8s.io', 'resourceclaims', 'list'],
  patchNamespacedResourceClaimStatus: ['resource.k8s.io', 'resourceclaims/status', 'patch'],
  replaceNamespacedResourceClaimStatus: ['resource.k8s.io', 'resourceclaims/status', 'update'],
  listResourceSlice: ['resource.k8s.io', 'resourceslices', 'list'],
  readResourceSlice: ['resource.k8s.io', 'resourceslices', 'get'],
  createResourceSlice: ['resource.k8s.io', 'resourceslices', 'create'],
  replaceResourceSlice: ['resource.k8s.io', 'resourceslices', 'update'],
  patchResourceSlice: ['resource.k8s.io', 'resourceslices', 'patch'],
  deleteResourceSlice: ['resource.k8s.io', 'resourceslices', 'delete'],
  deleteCollectionResourceSlice: ['resource.k8s.io', 'resourceslices', 'deletecollection'],
  listDeviceClass: ['resource.k8s.io', 'deviceclasses', 'list'],
  readDeviceClass: ['resource.k8s.io', 'deviceclasses', 'get'],
};

/** Every request method of client-node's API classes (CoreV1Api, ResourceV1Api, ...): what counts as an API call. */
const API_METHODS = new Set(
  Object.entries(k8s)
    .filter(([name, v]) => /Api$/.test(name) && typeof v === 'function' && (v as { prototype?: object }).prototype)
    .flatMap(([, v]) => Object.getOwnPropertyNames((v as { prototype: object }).prototype).filter((m) => /^(read|list|create|replace|patch|delete|connect)[A-Z]/.test(m))),
);

const SRC = fileURLToPath(new URL('../../src/k8s/', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

/** The cluster component (Deployment) runs extender/, webhook/, controller/; everything else under src/k8s runs in the node agent. */
const CONTROLLER_DIRS = ['extender', 'webhook', 'controller'];
const component = (file: string): 'controller' | 'node' => (CONTROLLER_DIRS.includes(relative(SRC, file).split('/')[0]!) ? 'controller' : 'node');

/** The grants each component's code needs, with where each comes from. */
function neededGrants(): Record<'controller' | 'node', Map<Grant, string>> {
  const out = { controller: new Map<Grant, string>(), node: new Map<Grant, string>() };
  for (const file of sources(SRC)) {
    const text = readFileSync(file, 'utf8');
    const where = relative(SRC, file);
    for (const m of text.matchAll(/\.([A-Za-z]\w*)\s*\(/g)) {
      const method = m[1]!;
      if (!API_METHODS.has(method)) continue;
      const call = API_CALLS[method];
      if (!call) throw new Error(`${where} calls client-node's ${method}: add what it needs (group, resource, verb) to API_CALLS in test/k8s/deploy-rbac.test.ts, and to the chart's role`);
      out[component(file)].set(`${call[0]}|${call[1]}|${call[2]}`, `${where}: ${method}`);
    }
    // Watches (informers, Watch, ListWatch) name the collection's path.
    for (const m of text.matchAll(/['`](\/api\/v1|\/apis\/([a-z0-9.-]+)\/v[a-z0-9]+)\/([a-z]+)['`]/g)) {
      out[component(file)].set(`${m[2] ?? ''}|${m[3]}|watch`, `${where}: watch ${m[0]}`);
    }
  }
  return out;
}

function granted(role: V1ClusterRole | V1Role): Set<Grant> {
  const out = new Set<Grant>();
  for (const r of role.rules ?? []) {
    for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) out.add(`${g}|${res}|${v}`);
  }
  return out;
}

describe('RBAC: each ServiceAccount may do what its code does, and nothing else', () => {
  const docs = documents(renderChart()) as unknown as (k8s.KubernetesObject & Record<string, unknown>)[];
  const byKind = <T>(kind: string): T[] => docs.filter((d) => d.kind === kind) as T[];
  const need = neededGrants();

  it.each(['controller', 'node'] as const)('gpushare-%s\'s ClusterRole grants exactly the calls its code makes', (name) => {
    const role = byKind<V1ClusterRole>('ClusterRole').find((r) => r.metadata?.name === `gpushare-${name}`)!;
    const have = granted(role);
    const missing = [...need[name]].filter(([g]) => !have.has(g)).map(([g, from]) => `${g} (${from})`);
    const unused = [...have].filter((g) => !need[name].has(g));
    expect({ missing, unused }).toEqual({ missing: [], unused: [] });
    for (const r of role.rules ?? []) {
      expect(r.resourceNames).toBeUndefined();
      expect([...(r.verbs ?? []), ...(r.resources ?? []), ...(r.apiGroups ?? [])]).not.toContain('*');
    }
  });

  it('the code\'s calls are the ones documented for each component', () => {
    expect([...need.controller.keys()].sort()).toEqual(['|nodes|list', '|nodes|watch', '|pods/binding|create', '|pods|get', '|pods|list', '|pods|patch', '|pods|watch']);
    expect([...need.node.keys()].some((g) => g.startsWith('resource.k8s.io|resourceslices|'))).toBe(true);
  });

  it('each ServiceAccount is bound to its own roles only; the scheduler to the roles Kubernetes defines for one, plus its lease', () => {
    const subjects = (b: V1ClusterRoleBinding | V1RoleBinding): string[] => (b.subjects ?? []).map((s) => `${s.kind}:${s.namespace}/${s.name}`);
    const bindings = [...byKind<V1ClusterRoleBinding>('ClusterRoleBinding'), ...byKind<V1RoleBinding>('RoleBinding')].map((b) => ({
      role: `${b.roleRef.kind}:${b.roleRef.name}${b.metadata?.namespace ? `@${b.metadata.namespace}` : ''}`,
      subjects: subjects(b),
    }));
    const sa = (n: string): string => `ServiceAccount:${DEFAULT_NAMESPACE}/gpushare-${n}`;
    expect(bindings.sort((a, b) => a.role.localeCompare(b.role))).toEqual(
      [
        { role: 'ClusterRole:gpushare-controller', subjects: [sa('controller')] },
        { role: 'ClusterRole:gpushare-node', subjects: [sa('node')] },
        { role: 'ClusterRole:system:kube-scheduler', subjects: [sa('scheduler')] },
        { role: 'ClusterRole:system:volume-scheduler', subjects: [sa('scheduler')] },
        { role: `Role:extension-apiserver-authentication-reader@kube-system`, subjects: [sa('scheduler')] },
        { role: `Role:gpushare-scheduler-lease@${DEFAULT_NAMESPACE}`, subjects: [sa('scheduler')] },
      ].sort((a, b) => a.role.localeCompare(b.role)),
    );
    const lease = byKind<V1Role>('Role').find((r) => r.metadata?.name === 'gpushare-scheduler-lease')!;
    expect(lease.rules).toEqual([
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], resourceNames: ['gpushare-scheduler'], verbs: ['get', 'update'] },
    ]);
    // Each pod runs as its component's account.
    const accounts = docs
      .filter((d) => d.kind === 'Deployment' || d.kind === 'DaemonSet')
      .map((d) => [d.metadata?.name, (d as unknown as k8s.V1Deployment).spec?.template.spec?.serviceAccountName]);
    expect(Object.fromEntries(accounts)).toEqual({ 'gpushare-controller': 'gpushare-controller', 'gpushare-node': 'gpushare-node', 'gpushare-scheduler': 'gpushare-scheduler' });
  });

  it('the slice policy matches the node agent\'s account', () => {
    const policy = docs.find((d) => d.kind === 'ValidatingAdmissionPolicy') as unknown as k8s.V1ValidatingAdmissionPolicy;
    expect(policy.spec?.matchConditions?.[0]?.expression).toBe(`request.userInfo.username == "system:serviceaccount:${DEFAULT_NAMESPACE}:gpushare-node"`);
    expect(policy.spec?.matchConstraints?.resourceRules?.[0]?.resources).toEqual(['resourceslices']);
  });
});
