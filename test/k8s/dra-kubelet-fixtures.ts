/**
 * Fixtures for the DRA kubelet plugin's tests: GPUs, ResourceClaims in the JSON the API server
 * returns (resource.k8s.io/v1), and a fake kubelet that speaks to the plugin over its real Unix
 * sockets with a real gRPC client built from the project's .proto files.
 */
import { credentials, status, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import type { Gpu } from '../../src/domain/gpu.js';
import { kubeletProtos } from '../../src/k8s/grpc/protos.js';
import { CONFIG_API_VERSION, CONFIG_KIND, DEVICE_CLASS, DRIVER_NAME } from '../../src/k8s/dra/names.js';

export const GIB = 2 ** 30;

export function gpu(index: number, over: Partial<Gpu> = {}): Gpu {
  return {
    index, uuid: `GPU-${index}0000000-1111-2222-3333-44444444444${index}`, name: 'NVIDIA H100 80GB HBM3', model: 'H100-80GB', health: 'ok',
    memoryTotalBytes: 80 * GIB, memoryUsedBytes: 0, memoryFreeBytes: 80 * GIB, memoryReservedBytes: null,
    utilizationGpu: 0, utilizationMemory: 0, temperatureC: 30, powerDrawWatts: 70, powerLimitWatts: 700,
    clockSmMHz: 1980, clockMemoryMHz: 2619, maxClockSmMHz: 1980, maxClockMemoryMHz: 2619, pciBusId: `00000000:${19 + index}:00.0`,
    numaNode: 0, computeCapability: '9.0', multiprocessorCount: 132, migMode: 'disabled', migDevices: [],
    processes: [], eccErrors: null, clockEventReasons: [], energyJoules: null, pcieReplays: null, xidErrors: null, lastXid: null, topology: [],
    ...over,
  };
}

export interface FixtureResult {
  readonly request?: string;
  readonly driver?: string;
  readonly pool?: string;
  readonly device: string;
  readonly shareID?: string;
  readonly consumedCapacity?: Record<string, string>;
}

export interface ClaimFixture {
  readonly uid: string;
  readonly name?: string;
  readonly namespace?: string;
  readonly results?: readonly FixtureResult[] | null;
  /** Opaque parameters for our driver (FromClaim), and optionally a class config (FromClass) before it. */
  readonly parameters?: Record<string, unknown>;
  readonly classParameters?: Record<string, unknown>;
}

/** A ResourceClaim as `GET /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name>` returns it. */
export function claimJson(f: ClaimFixture): Record<string, unknown> {
  const namespace = f.namespace ?? 'ml';
  const name = f.name ?? 'train-gpu';
  const results = f.results === undefined ? [{ device: 'gpu-0', consumedCapacity: { memory: '8Gi', cores: '30' } }] : f.results;
  const opaque = (parameters: Record<string, unknown>): Record<string, unknown> => ({ driver: DRIVER_NAME, parameters });
  const config = [
    ...(f.classParameters === undefined ? [] : [{ source: 'FromClass', requests: ['gpu'], opaque: opaque(f.classParameters) }]),
    ...(f.parameters === undefined ? [] : [{ source: 'FromClaim', requests: ['gpu'], opaque: opaque(f.parameters) }]),
  ];
  const spec = {
    devices: {
      requests: [{ name: 'gpu', exactly: { deviceClassName: DEVICE_CLASS.slice, allocationMode: 'ExactCount', count: 1, capacity: { requests: { memory: '8Gi', cores: '30' } } } }],
      ...(f.parameters === undefined ? {} : { config: [{ requests: ['gpu'], opaque: opaque(f.parameters) }] }),
    },
  };
  const claim: Record<string, unknown> = {
    kind: 'ResourceClaim',
    apiVersion: 'resource.k8s.io/v1',
    metadata: {
      name, namespace, uid: f.uid, resourceVersion: '48213', generation: 1, creationTimestamp: '2026-12-06T10:00:00Z',
      managedFields: [{ manager: 'kube-controller-manager', operation: 'Update', apiVersion: 'resource.k8s.io/v1', time: '2026-12-06T10:00:00Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:spec': {} } }],
    },
    spec,
  };
  if (results !== null) {
    claim['status'] = {
      allocation: {
        devices: {
          results: results.map((r) => ({ request: r.request ?? 'gpu', driver: r.driver ?? DRIVER_NAME, pool: r.pool ?? 'node-a', device: r.device, ...(r.shareID ? { shareID: r.shareID } : {}), ...(r.consumedCapacity ? { consumedCapacity: r.consumedCapacity } : {}) })),
          ...(config.length === 0 ? {} : { config }),
        },
        nodeSelector: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] }] },
        allocationTimestamp: '2026-12-06T10:00:01Z',
      },
      reservedFor: [{ resource: 'pods', name: 'train-0', uid: 'b7a3c9e0-0000-4000-8000-00000000aaaa' }],
    };
  }
  return claim;
}

export const validConfig = { apiVersion: CONFIG_API_VERSION, kind: CONFIG_KIND, isolation: 'time-slice', priority: 'high', computePolicy: 'share' };

type Unary = (request: unknown, callback: (error: ServiceError | null, response: unknown) => void) => void;

/** The kubelet's side: registration over the registry socket, then prepare/unprepare/health on the plugin's socket. */
export class FakeKubelet {
  private readonly clients = new Map<string, Client>();

  /** One connection per service and socket, kept, as the kubelet keeps its connection to a plugin. */
  private client(kind: 'registration' | 'draPlugin' | 'healthV1' | 'healthV1alpha1', socket: string): Client {
    const key = `${kind} ${socket}`;
    const open = this.clients.get(key);
    if (open !== undefined) return open;
    const Ctor = kubeletProtos()[kind];
    const c = new Ctor(`unix:${socket}`, credentials.createInsecure());
    this.clients.set(key, c);
    return c;
  }

  private call<T>(c: Client, method: string, request: unknown): Promise<T> {
    const fn = (c as unknown as Record<string, Unary>)[method];
    if (fn === undefined) throw new Error(`no method ${method}`);
    return new Promise((resolve, reject) => fn.call(c, request, (e, r) => (e ? reject(e) : resolve(r as T))));
  }

  getInfo(registrySocket: string): Promise<{ type: string; name: string; endpoint: string; supported_versions: string[] }> {
    return this.call(this.client('registration', registrySocket), 'GetInfo', {});
  }

  notify(registrySocket: string, registered: boolean, error = ''): Promise<unknown> {
    return this.call(this.client('registration', registrySocket), 'NotifyRegistrationStatus', { plugin_registered: registered, error });
  }

  prepare(pluginSocket: string, claims: { namespace: string; name: string; uid: string }[]): Promise<{ claims: Record<string, { devices: WireDevice[]; error: string }> }> {
    return this.call(this.client('draPlugin', pluginSocket), 'NodePrepareResources', { claims });
  }

  unprepare(pluginSocket: string, claims: { namespace: string; name: string; uid: string }[]): Promise<{ claims: Record<string, { error: string }> }> {
    return this.call(this.client('draPlugin', pluginSocket), 'NodeUnprepareResources', { claims });
  }

  watch(pluginSocket: string, version: 'healthV1' | 'healthV1alpha1'): ClientReadableStream<WireHealth> {
    const c = this.client(version, pluginSocket) as unknown as Record<string, (req: unknown) => ClientReadableStream<WireHealth>>;
    const fn = c['NodeWatchResources'];
    if (fn === undefined) throw new Error('no NodeWatchResources');
    const stream = fn.call(c, {});
    // Our own cancel() ends a stream with CANCELLED: expected, not a failure; anything else is kept.
    stream.on('error', (e: ServiceError) => {
      if (e.code !== status.CANCELLED) this.streamErrors.push(e);
    });
    return stream;
  }

  /** Stream errors other than our own cancellations. */
  readonly streamErrors: ServiceError[] = [];

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

export interface WireDevice {
  request_names: string[];
  pool_name: string;
  device_name: string;
  cdi_device_ids: string[];
  share_id?: string;
}

export interface WireHealth {
  devices: { device: { pool_name: string; device_name: string }; health: string; last_updated_time: number; health_check_timeout_seconds: number; message: string }[];
}
