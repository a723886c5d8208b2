/**
 * A fake Kubernetes API server for tests: a real HTTP server on 127.0.0.1 with the API
 * server's semantics for the few resources gpushare uses, so code built on
 * @kubernetes/client-node is tested through the library's real HTTP paths.
 *
 * Resources (RESOURCES): nodes, pods (+ pods/binding, pods/eviction, pods/status), events (core v1);
 * resourceslices, resourceclaims (+ resourceclaims/status), deviceclasses (resource.k8s.io/v1).
 * Verbs: list (labelSelector; fieldSelector over the fields the real server supports, e.g.
 * resourceslices by spec.nodeName and spec.driver), watch (`?watch=1&resourceVersion=N`:
 * newline-delimited ADDED/MODIFIED/DELETED after N, synthetic ADDED for all with no or a `0`
 * version, an ERROR event carrying a 410 Expired Status for a compacted one, objects leaving
 * or entering a selector seen as DELETED/ADDED), get, create (409 AlreadyExists,
 * generateName), update (409 Conflict on a stale metadata.resourceVersion; a no-op update
 * changes nothing), patch (json-patch, merge-patch and strategic-merge-patch content types;
 * a stale resourceVersion in the patch is a 409), delete (preconditions), the status
 * subresource (a main update keeps status, a status update keeps the rest). A list serves the
 * latest state whatever resourceVersion it names (what resourceVersionMatch=NotOlderThan allows);
 * deletes are immediate (no graceful deletion, no finalizers). Every error is a
 * metav1.Status. With `strict` (the default) a written object that client-node's typed
 * serializer would lose anything of is a 400, as fieldValidation=Strict.
 *
 * Use:
 *   const api = await startFakeApiServer();            // api.url, api.kubeConfig()
 *   api.seed('nodes', { metadata: { name: 'n1' } });   // objects present before the test
 *   api.objects('resourceslices'); api.object('pods', 'p', 'ns');   // what is there now
 *   api.requests / api.writes()                         // what was asked (verb, body, ...)
 *   api.failNext({ verb: 'update', resource: 'resourceslices' }, { code: 409 });  // inject
 *     (a 410 on a watch comes as the real server sends it: a 200 stream with one ERROR event)
 *   api.dropWatches();                                  // close every open watch
 *   api.compact();                                      // older versions now 410 on watch
 *   api.mutate('resourceslices', 'name', (o) => ...);   // someone else's change (MODIFIED)
 *   api.remove('resourceslices', 'name');               // someone else's delete (DELETED)
 *   await api.close();
 *
 * Over 400 lines: one HTTP handler over one store; the selector and patch rules sit in
 * fake-apiserver-select.ts and fake-apiserver-patch.ts.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { applyPatch, PatchError } from './fake-apiserver-patch.js';
import { fieldSelector, labelSelector, SelectorError, type Selector } from './fake-apiserver-select.js';
import { checkWire, typeOf } from './typed.js';

export interface ResourceInfo {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly namespaced: boolean;
  /** Has a status subresource. */
  readonly status: boolean;
  /** Field selector paths the real server supports. */
  readonly fields: readonly string[];
}

export const RESOURCES = {
  nodes: { group: '', version: 'v1', kind: 'Node', namespaced: false, status: true, fields: ['metadata.name', 'spec.unschedulable'] },
  pods: { group: '', version: 'v1', kind: 'Pod', namespaced: true, status: true, fields: ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.restartPolicy', 'status.phase', 'status.podIP', 'status.nominatedNodeName'] },
  events: { group: '', version: 'v1', kind: 'Event', namespaced: true, status: false, fields: ['metadata.name', 'metadata.namespace', 'involvedObject.kind', 'involvedObject.namespace', 'involvedObject.name', 'involvedObject.uid', 'involvedObject.apiVersion', 'involvedObject.resourceVersion', 'involvedObject.fieldPath', 'reason', 'reportingComponent', 'source', 'type'] },
  resourceslices: { group: 'resource.k8s.io', version: 'v1', kind: 'ResourceSlice', namespaced: false, status: false, fields: ['metadata.name', 'spec.nodeName', 'spec.driver'] },
  resourceclaims: { group: 'resource.k8s.io', version: 'v1', kind: 'ResourceClaim', namespaced: true, status: true, fields: ['metadata.name', 'metadata.namespace'] },
  deviceclasses: { group: 'resource.k8s.io', version: 'v1', kind: 'DeviceClass', namespaced: false, status: false, fields: ['metadata.name'] },
} as const satisfies Record<string, ResourceInfo>;

export type Resource = keyof typeof RESOURCES;
export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

export interface RequestRecord {
  readonly verb: Verb;
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly subresource: string | undefined;
  readonly query: Record<string, string>;
  readonly contentType: string | undefined;
  readonly body: unknown;
  /** The HTTP status answered. */
  status: number;
}

export interface FailureMatch {
  readonly verb?: Verb;
  readonly resource?: Resource;
  readonly name?: string;
  readonly subresource?: string;
}

export interface InjectedError {
  readonly code: number;
  readonly reason?: string;
  readonly message?: string;
}

interface WatchEvent {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly object: Obj;
  readonly previous: Obj | null;
}

interface OpenWatch {
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly matches: Selector;
  readonly res: ServerResponse;
}

const REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  409: 'Conflict', 410: 'Expired', 415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests',
  500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout',
};

class StatusError extends Error {
  constructor(readonly code: number, message: string, readonly reason: string = REASONS[code] ?? 'Unknown', readonly details: Record<string, unknown> = {}) {
    super(message);
  }
}

/** metav1.Status as the API server writes it. */
export function statusBody(code: number, reason: string, message: string, details: Record<string, unknown> = {}): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: code < 400 ? 'Success' : 'Failure', message, reason, details, code };
}

function groupResource(resource: Resource): string {
  const group = RESOURCES[resource].group;
  return group === '' ? resource : `${resource}.${group}`;
}

function keyOf(resource: Resource, namespace: string | undefined, name: string): string {
  return `${resource}/${namespace ?? ''}/${name}`;
}

/** Spec-like content: everything but metadata and status, for the generation rule. */
function specOf(obj: Obj): string {
  const { metadata: _m, status: _s, ...rest } = obj;
  return JSON.stringify(rest);
}

function same(a: unknown, b: unknown): boolean {
  const canon = (v: unknown): unknown => (Array.isArray(v) ? v.map(canon) : v !== null && typeof v === 'object'
    ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([x], [y]) => (x < y ? -1 : 1)).map(([k, x]) => [k, canon(x)]))
    : v);
  return JSON.stringify(canon(a)) === JSON.stringify(canon(b));
}

export interface FakeApiServerOptions {
  /** Reject written objects client-node's typed serializer would lose anything of (default true). */
  readonly strict?: boolean;
}

export class FakeApiServer {
  readonly requests: RequestRecord[] = [];
  private readonly store = new Map<string, Obj>();
  private readonly history: WatchEvent[] = [];
  private readonly watches = new Set<OpenWatch>();
  private readonly failures: { match: FailureMatch; error: InjectedError; left: number }[] = [];
  private version = 1;
  private compactedBefore = 0;
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly strict: boolean;
  url = '';

  constructor(options: FakeApiServerOptions = {}) {
    this.strict = options.strict ?? true;
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** A KubeConfig whose current context points at this server. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'fake', server: this.url, skipTLSVerify: true }],
      users: [{ name: 'fake', token: 'fake-token' }],
      contexts: [{ name: 'fake', cluster: 'fake', user: 'fake' }],
      currentContext: 'fake',
    });
    return kc;
  }

  /** The current resourceVersion (the last write's). */
  get resourceVersion(): string {
    return String(this.version);
  }

  /** Puts an object in place as if created earlier (no request recorded, no strict check); returns the stored copy. */
  seed(resource: Resource, obj: object): Obj {
    const stored = this.stamp(resource, structuredClone(obj) as Obj, this.namespaceOf(resource, obj as Record<string, unknown>));
    if (this.store.has(this.key(resource, stored))) throw new Error(`seed: ${resource} ${String(stored.metadata.name)} exists`);
    this.commit(resource, 'ADDED', stored, null);
    return structuredClone(stored);
  }

  /** Someone else's change: `change` edits a copy, stored with a new resourceVersion (a MODIFIED event). */
  mutate(resource: Resource, name: string, change: (obj: Obj) => void, namespace?: string): Obj {
    const current = this.store.get(keyOf(resource, namespace, name));
    if (!current) throw new Error(`mutate: no ${resource} ${name}`);
    const next = structuredClone(current);
    change(next);
    next.metadata.resourceVersion = String(++this.version);
    this.commit(resource, 'MODIFIED', next, current);
    return structuredClone(next);
  }

  /** Someone else's delete (a DELETED event). */
  remove(resource: Resource, name: string, namespace?: string): void {
    const current = this.store.get(keyOf(resource, namespace, name));
    if (!current) throw new Error(`remove: no ${resource} ${name}`);
    this.deleteStored(resource, current);
  }

  object(resource: Resource, name: string, namespace?: string): Obj | undefined {
    const obj = this.store.get(keyOf(resource, namespace, name));
    return obj && structuredClone(obj);
  }

  objects(resource: Resource, namespace?: string): Obj[] {
    return this.stored(resource).filter((o) => namespace === undefined || o.metadata.namespace === namespace).map((o) => structuredClone(o));
  }

  /** Requests that changed (or tried to change) something, oldest first. */
  writes(resource?: Resource): RequestRecord[] {
    return this.requests.filter((r) => ['create', 'update', 'patch', 'delete'].includes(r.verb) && (resource === undefined || r.resource === resource));
  }

  /** The next `times` requests matching `match` fail with `error` (a metav1.Status) and change nothing. */
  failNext(match: FailureMatch, error: InjectedError, times = 1): void {
    this.failures.push({ match, error, left: times });
  }

  /** Closes every open watch (of `resource`, if given), as a server restart or a load balancer would. */
  dropWatches(resource?: Resource): number {
    let dropped = 0;
    for (const watch of [...this.watches]) {
      if (resource !== undefined && watch.resource !== resource) continue;
      this.watches.delete(watch);
      watch.res.end();
      dropped += 1;
    }
    return dropped;
  }

  /** Forgets the history: a watch from any version before now gets 410 Expired. */
  compact(): void {
    this.compactedBefore = this.version;
    this.history.length = 0;
  }

  /** How many watches are open (of `resource`, if given). */
  openWatches(resource?: Resource): number {
    return [...this.watches].filter((w) => resource === undefined || w.resource === resource).length;
  }

  async close(): Promise<void> {
    this.dropWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- the store ----

  private stored(resource: Resource): Obj[] {
    return [...this.store.entries()].filter(([k]) => k.startsWith(`${resource}/`)).map(([, o]) => o);
  }

  private namespaceOf(resource: Resource, obj: Record<string, unknown>, fromPath?: string): string | undefined {
    if (!RESOURCES[resource].namespaced) return undefined;
    const own = (obj.metadata as { namespace?: string } | undefined)?.namespace;
    return fromPath ?? own ?? 'default';
  }

  private key(resource: Resource, obj: Obj): string {
    return keyOf(resource, obj.metadata.namespace as string | undefined, String(obj.metadata.name));
  }

  private stamp(resource: Resource, obj: Obj, namespace: string | undefined): Obj {
    const info = RESOURCES[resource];
    obj.metadata = { ...(obj.metadata ?? {}) };
    if (namespace !== undefined) obj.metadata.namespace = namespace;
    obj.apiVersion = info.group === '' ? info.version : `${info.group}/${info.version}`;
    obj.kind = info.kind;
    obj.metadata.uid ??= randomUUID();
    obj.metadata.creationTimestamp ??= new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    obj.metadata.generation ??= 1;
    obj.metadata.resourceVersion = String(++this.version);
    return obj;
  }

  private commit(resource: Resource, type: WatchEvent['type'], obj: Obj, previous: Obj | null): void {
    const key = this.key(resource, obj);
    if (type === 'DELETED') this.store.delete(key);
    else this.store.set(key, obj);
    const event: WatchEvent = { rv: Number(obj.metadata.resourceVersion), resource, type, object: obj, previous };
    this.history.push(event);
    for (const watch of this.watches) this.send(watch, event);
  }

  private deleteStored(resource: Resource, current: Obj): Obj {
    const gone = structuredClone(current);
    gone.metadata.resourceVersion = String(++this.version);
    this.commit(resource, 'DELETED', gone, current);
    return gone;
  }

  /** The event as a watch with this filter sees it: objects leaving the selection are DELETED, entering ADDED. */
  private send(watch: OpenWatch, event: WatchEvent): void {
    if (event.resource !== watch.resource) return;
    if (watch.namespace !== undefined && event.object.metadata.namespace !== watch.namespace) return;
    const now = event.type !== 'DELETED' && watch.matches(event.object);
    const before = event.previous !== null && watch.matches(event.previous);
    let type: WatchEvent['type'] | null = null;
    if (event.type === 'ADDED') type = now ? 'ADDED' : null;
    else if (event.type === 'DELETED') type = before ? 'DELETED' : null;
    else type = now && before ? 'MODIFIED' : now ? 'ADDED' : before ? 'DELETED' : null;
    if (type !== null) watch.res.write(`${JSON.stringify({ type, object: event.object })}\n`);
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const query = Object.fromEntries(url.searchParams.entries());
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let record: RequestRecord | null = null;
    try {
      const route = this.route(url.pathname);
      const verb = this.verbOf(req.method ?? 'GET', route.name, query);
      let body: unknown;
      try {
        body = raw === '' ? undefined : JSON.parse(raw);
      } catch {
        throw new StatusError(400, 'the request body is not JSON');
      }
      record = { verb, ...route, query, contentType: req.headers['content-type'], body, status: 0 };
      this.requests.push(record);
      if (verb === 'watch' && this.expiredWatch(record, res)) return;
      this.injected(record);
      if (verb === 'watch') {
        record.status = 200;
        this.watch(route.resource, route.namespace, query, res);
        return;
      }
      const [code, answer] = this.serve(record);
      record.status = code;
      res.writeHead(code, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    } catch (err) {
      const status = err instanceof StatusError ? err
        : err instanceof PatchError ? new StatusError(err.code, err.message)
          : err instanceof SelectorError ? new StatusError(400, err.message)
            : new StatusError(500, String(err));
      if (record) record.status = status.code;
      res.writeHead(status.code, { 'content-type': 'application/json' }).end(JSON.stringify(statusBody(status.code, status.reason, status.message, status.details)));
    }
  }

  private route(path: string): { resource: Resource; namespace: string | undefined; name: string | undefined; subresource: string | undefined } {
    const m = /^\/(?:api\/v1|apis\/([^/]+)\/([^/]+))\/(.*)$/.exec(path);
    if (!m) throw new StatusError(404, `the server could not find the requested resource (${path})`);
    let parts = m[3]!.split('/').filter((p) => p !== '').map(decodeURIComponent);
    let namespace: string | undefined;
    if (parts[0] === 'namespaces' && parts.length >= 3) {
      namespace = parts[1];
      parts = parts.slice(2);
    }
    const [plural, name, subresource] = parts;
    const info = (RESOURCES as Record<string, ResourceInfo>)[plural ?? ''];
    const group = m[1] ?? '';
    const version = m[2] ?? 'v1';
    if (!info || info.group !== group || info.version !== version || parts.length > 3) {
      throw new StatusError(404, `the server could not find the requested resource (${path})`);
    }
    if (namespace !== undefined && !info.namespaced) throw new StatusError(404, `${plural} is not namespaced (${path})`);
    const allowed = plural === 'pods' ? ['status', 'binding', 'eviction'] : info.status ? ['status'] : [];
    if (subresource !== undefined && !allowed.includes(subresource)) throw new StatusError(404, `${plural} has no subresource ${subresource}`);
    return { resource: plural as Resource, namespace, name, subresource };
  }

  private verbOf(method: string, name: string | undefined, query: Record<string, string>): Verb {
    if (method === 'GET') return name !== undefined ? 'get' : ['1', 'true'].includes(query.watch ?? '') ? 'watch' : 'list';
    if (method === 'POST') return 'create';
    if (method === 'PUT' && name !== undefined) return 'update';
    if (method === 'PATCH' && name !== undefined) return 'patch';
    if (method === 'DELETE' && name !== undefined) return 'delete';
    throw new StatusError(405, `${method} is not supported here`);
  }

  private injected(record: RequestRecord, only: (error: InjectedError) => boolean = () => true): void {
    const at = this.failures.findIndex(({ match, error }) => only(error) && (match.verb === undefined || match.verb === record.verb)
      && (match.resource === undefined || match.resource === record.resource)
      && (match.name === undefined || match.name === record.name)
      && (match.subresource === undefined || match.subresource === record.subresource));
    if (at < 0) return;
    const failure = this.failures[at]!;
    failure.left -= 1;
    if (failure.left <= 0) this.failures.splice(at, 1);
    const { code, reason, message } = failure.error;
    throw new StatusError(code, message ?? `injected ${code} for ${record.verb} ${record.resource}`, reason ?? REASONS[code] ?? 'Unknown', { name: record.name, kind: record.resource });
  }

  /** An injected 410 on a watch comes as the real server sends it: a 200 stream with one ERROR event. */
  private expiredWatch(record: RequestRecord, res: ServerResponse): boolean {
    try {
      this.injected(record, (error) => error.code === 410);
      return false;
    } catch (err) {
      const status = err as StatusError;
      record.status = 200;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', status.message) })}\n`);
      return true;
    }
  }

  private notFound(resource: Resource, name: string): StatusError {
    return new StatusError(404, `${groupResource(resource)} "${name}" not found`, 'NotFound', { name, group: RESOURCES[resource].group, kind: resource });
  }

  private conflict(resource: Resource, name: string): StatusError {
    return new StatusError(409, `Operation cannot be fulfilled on ${groupResource(resource)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, 'Conflict', { name, group: RESOURCES[resource].group, kind: resource });
  }

  private checkStrict(resource: Resource, obj: Obj): void {
    if (!this.strict) return;
    const info = RESOURCES[resource];
    const typed = { ...obj, apiVersion: info.group === '' ? info.version : `${info.group}/${info.version}`, kind: info.kind };
    try {
      checkWire(typed, typeOf(typed));
    } catch (err) {
      throw new StatusError(400, `${RESOURCES[resource].kind} in version "${RESOURCES[resource].version}" cannot be handled: strict decoding error: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  private serve(r: RequestRecord): [number, unknown] {
    const { resource, namespace, name, subresource } = r;
    const info: ResourceInfo = RESOURCES[resource];
    if (info.namespaced && namespace === undefined && r.verb !== 'list') throw new StatusError(404, `${resource} needs a namespace`);
    if (r.verb === 'list') return [200, this.list(resource, namespace, r.query)];
    if (r.verb === 'create' && subresource === 'binding') return this.bind(namespace, name!, r.body);
    if (r.verb === 'create' && subresource === 'eviction') return this.evict(namespace, name!, r.body);
    if (r.verb === 'create') {
      if (name !== undefined) throw new StatusError(405, `create goes to the collection, not ${name}`);
      return [201, this.create(resource, namespace, r.body)];
    }
    const current = this.store.get(keyOf(resource, namespace, name!));
    if (!current) throw this.notFound(resource, name!);
    if (r.verb === 'get') return [200, current];
    if (r.verb === 'delete') {
      const pre = (r.body as { preconditions?: { resourceVersion?: string; uid?: string } } | undefined)?.preconditions;
      if (pre?.resourceVersion !== undefined && pre.resourceVersion !== current.metadata.resourceVersion) throw this.conflict(resource, name!);
      if (pre?.uid !== undefined && pre.uid !== current.metadata.uid) throw this.conflict(resource, name!);
      return [200, this.deleteStored(resource, current)];
    }
    let proposed: Obj;
    if (r.verb === 'patch') {
      proposed = applyPatch(r.contentType ?? '', structuredClone(current), r.body) as Obj;
    } else {
      proposed = structuredClone(r.body) as Obj;
      if (proposed?.metadata?.name !== name) throw new StatusError(400, `the name of the object (${String(proposed?.metadata?.name)}) does not match the name on the URL (${name})`);
    }
    return [200, this.update(resource, current, proposed, subresource)];
  }

  private list(resource: Resource, namespace: string | undefined, query: Record<string, string>): unknown {
    const info = RESOURCES[resource];
    const matches = this.selector(resource, query);
    const items = this.stored(resource).filter((o) => (namespace === undefined || o.metadata.namespace === namespace) && matches(o));
    return { kind: `${info.kind}List`, apiVersion: info.group === '' ? info.version : `${info.group}/${info.version}`, metadata: { resourceVersion: this.resourceVersion }, items };
  }

  private selector(resource: Resource, query: Record<string, string>): Selector {
    const byLabel = labelSelector(query.labelSelector ?? null);
    const byField = fieldSelector(query.fieldSelector ?? null, RESOURCES[resource].fields, RESOURCES[resource].kind);
    return (o) => byLabel(o) && byField(o);
  }

  private create(resource: Resource, namespace: string | undefined, body: unknown): Obj {
    const obj = structuredClone(body) as Obj;
    if (obj === null || typeof obj !== 'object' || typeof obj.metadata !== 'object') throw new StatusError(400, 'the object has no metadata');
    if (obj.metadata.namespace !== undefined && obj.metadata.namespace !== namespace) {
      throw new StatusError(400, `the namespace of the provided object (${String(obj.metadata.namespace)}) does not match the namespace sent on the request (${namespace})`);
    }
    if (obj.metadata.name === undefined && typeof obj.metadata.generateName === 'string') {
      obj.metadata.name = `${obj.metadata.generateName}${randomUUID().slice(0, 5)}`;
    }
    if (typeof obj.metadata.name !== 'string' || obj.metadata.name === '') throw new StatusError(422, `${RESOURCES[resource].kind} is invalid: metadata.name: Required value: name or generateName is required`, 'Invalid');
    this.checkStrict(resource, obj);
    if (this.store.has(keyOf(resource, namespace, obj.metadata.name))) {
      throw new StatusError(409, `${groupResource(resource)} "${obj.metadata.name}" already exists`, 'AlreadyExists', { name: obj.metadata.name, group: RESOURCES[resource].group, kind: resource });
    }
    for (const field of ['uid', 'resourceVersion', 'creationTimestamp', 'generation']) delete obj.metadata[field];
    if (RESOURCES[resource].status) obj.status = resource === 'pods' ? { phase: 'Pending' } : {};
    const stored = this.stamp(resource, obj, namespace);
    this.commit(resource, 'ADDED', stored, null);
    return stored;
  }

  private update(resource: Resource, current: Obj, proposed: Obj, subresource: string | undefined): Obj {
    const name = String(current.metadata.name);
    if (proposed === null || typeof proposed !== 'object' || typeof proposed.metadata !== 'object') throw new StatusError(400, 'the object has no metadata');
    const asked = proposed.metadata.resourceVersion;
    if (asked !== undefined && asked !== '' && asked !== current.metadata.resourceVersion) throw this.conflict(resource, name);
    if (proposed.metadata.name !== current.metadata.name) throw new StatusError(400, `metadata.name is immutable (${name})`);
    this.checkStrict(resource, proposed);
    let next: Obj;
    if (subresource === 'status') {
      next = { ...structuredClone(current), status: structuredClone(proposed.status) } as Obj;
    } else {
      next = structuredClone(proposed);
      if (RESOURCES[resource].status) next.status = structuredClone(current.status);
      else if (current.status !== undefined) next.status = structuredClone(current.status);
      for (const field of ['uid', 'creationTimestamp', 'generation', 'namespace']) next.metadata[field] = current.metadata[field];
      next.apiVersion = current.apiVersion;
      next.kind = current.kind;
      if (specOf(next) !== specOf(current)) next.metadata.generation = Number(current.metadata.generation ?? 0) + 1;
    }
    next.metadata.resourceVersion = current.metadata.resourceVersion;
    if (same(next, current)) return current;
    next.metadata.resourceVersion = String(++this.version);
    this.commit(resource, 'MODIFIED', next, current);
    return next;
  }

  private bind(namespace: string | undefined, name: string, body: unknown): [number, unknown] {
    const pod = this.store.get(keyOf('pods', namespace, name));
    if (!pod) throw this.notFound('pods', name);
    const target = (body as { target?: { kind?: string; name?: string } } | undefined)?.target;
    if (!target?.name) throw new StatusError(422, 'Binding is invalid: target.name: Required value');
    const spec = (pod.spec ?? {}) as Record<string, unknown>;
    if (spec.nodeName) throw new StatusError(409, `Operation cannot be fulfilled on pods/binding "${name}": pod ${name} is already assigned to node "${String(spec.nodeName)}"`, 'Conflict', { name, kind: 'pods/binding' });
    const next = structuredClone(pod);
    next.spec = { ...spec, nodeName: target.name };
    next.metadata.resourceVersion = String(++this.version);
    this.commit('pods', 'MODIFIED', next, pod);
    return [201, statusBody(201, '', '')];
  }

  /** An Eviction (policy/v1): no disruption budgets here, so the pod is deleted at once (preconditions honoured). */
  private evict(namespace: string | undefined, name: string, body: unknown): [number, unknown] {
    const pod = this.store.get(keyOf('pods', namespace, name));
    if (!pod) throw this.notFound('pods', name);
    const eviction = body as { kind?: string; metadata?: { name?: string }; deleteOptions?: { preconditions?: { uid?: string } } } | undefined;
    if (eviction?.kind !== 'Eviction' || eviction.metadata?.name !== name) throw new StatusError(400, `an eviction of pod ${name} must be an Eviction named ${name}`);
    checkWire(eviction, 'V1Eviction');
    const uid = eviction.deleteOptions?.preconditions?.uid;
    if (uid !== undefined && uid !== pod.metadata.uid) throw this.conflict('pods', name);
    this.deleteStored('pods', pod);
    return [201, statusBody(201, '', '')];
  }

  private watch(resource: Resource, namespace: string | undefined, query: Record<string, string>, res: ServerResponse): void {
    const matches = this.selector(resource, query);
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    const from = query.resourceVersion;
    const watch: OpenWatch = { resource, namespace, matches, res };
    if (from !== undefined && from !== '' && from !== '0' && Number(from) < this.compactedBefore) {
      const message = `too old resource version: ${from} (${this.compactedBefore})`;
      res.end(`${JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', message) })}\n`);
      return;
    }
    if (from === undefined || from === '' || from === '0') {
      for (const obj of this.stored(resource)) this.send(watch, { rv: 0, resource, type: 'ADDED', object: obj, previous: null });
    } else {
      for (const event of this.history) if (event.rv > Number(from)) this.send(watch, event);
    }
    this.watches.add(watch);
    res.on('close', () => this.watches.delete(watch));
    const timeout = Number(query.timeoutSeconds ?? 0);
    if (timeout > 0) {
      const timer = setTimeout(() => {
        this.watches.delete(watch);
        res.end();
      }, timeout * 1000);
      res.on('close', () => clearTimeout(timer));
    }
  }
}

/** A started fake API server (close it in afterEach). */
export async function startFakeApiServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  return new FakeApiServer(options).listen();
}

/** Polls `check` until it returns something other than undefined/false, or fails after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
