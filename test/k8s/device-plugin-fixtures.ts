/**
 * Fixtures for the device plugin's tests: a fake kubelet that serves the Registration service on
 * `<dir>/kubelet.sock` and, when the plugin registers, dials the plugin's socket back with a real
 * gRPC client built from the project's .proto (as the kubelet's device manager does); and pods in
 * the JSON the API server keeps, with the extender's decision annotation.
 */
import { credentials, Server, ServerCredentials, status, type Client, type ClientReadableStream, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { encodeDecision, type PodDecision } from '../../src/k8s/hami/decision.js';
import { GPUSHARE_ANNOTATION, RESOURCE } from '../../src/k8s/hami/names.js';
import { devicePluginProtos, KUBELET_SOCKET } from '../../src/k8s/deviceplugin/protos.js';

export const GIB = 2 ** 30;

export interface WireDevice {
  ID: string;
  health: string;
  topology: { nodes: { ID: number }[] } | null;
}

export interface WireAllocation {
  envs: Record<string, string>;
  mounts: { container_path: string; host_path: string; read_only: boolean }[];
  devices: { container_path: string; host_path: string; permissions: string }[];
  annotations: Record<string, string>;
  cdi_devices: { name: string }[];
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options: { pre_start_required: boolean; get_preferred_allocation_available: boolean };
}

type Unary = (request: unknown, options: { deadline: number }, callback: (error: ServiceError | null, response: unknown) => void) => void;

export class FakeKubelet {
  readonly registrations: RegisterRequest[] = [];
  /** Every ListAndWatch message from the current plugin connection, oldest first. */
  readonly lists: WireDevice[][] = [];
  readonly streamErrors: ServiceError[] = [];
  private server: Server | null = null;
  private plugin: Client | null = null;
  private stream: ClientReadableStream<{ devices: WireDevice[] }> | null = null;

  constructor(readonly dir: string) {}

  /** Listens on kubelet.sock (as a kubelet that just started). */
  async start(): Promise<void> {
    const server = new Server();
    server.addService(devicePluginProtos().registration.service, {
      Register: (call: ServerUnaryCall<RegisterRequest, unknown>, callback: sendUnaryData<unknown>) => {
        this.registrations.push(call.request);
        if (call.request.version !== 'v1beta1') {
          callback({ code: status.INVALID_ARGUMENT, details: `unsupported version ${call.request.version}` } as ServiceError);
          return;
        }
        callback(null, {});
        this.connect(call.request.endpoint);
      },
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${join(this.dir, KUBELET_SOCKET)}`, ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    this.server = server;
  }

  /** The device manager's side of a registration: options, then the ListAndWatch stream. */
  private connect(endpoint: string): void {
    this.disconnect();
    const Ctor = devicePluginProtos().devicePlugin;
    this.plugin = new Ctor(`unix:${join(this.dir, endpoint)}`, credentials.createInsecure());
    this.lists.length = 0;
    const stream = (this.plugin as unknown as Record<string, (req: unknown) => ClientReadableStream<{ devices: WireDevice[] }>>)['ListAndWatch']!.call(this.plugin, {});
    stream.on('data', (m: { devices: WireDevice[] }) => this.lists.push(m.devices));
    stream.on('error', (e: ServiceError) => {
      if (e.code !== status.CANCELLED) this.streamErrors.push(e);
    });
    this.stream = stream;
  }

  private disconnect(): void {
    this.stream?.cancel();
    this.stream = null;
    this.plugin?.close();
    this.plugin = null;
  }

  /** A kubelet restart: it goes away, and at start it removes every socket in the directory, then listens again. */
  async restart(between: () => Promise<void> = async () => undefined): Promise<void> {
    await this.stop();
    await between();
    for (const f of readdirSync(this.dir)) if (f.endsWith('.sock')) rmSync(join(this.dir, f), { force: true });
    await this.start();
  }

  async stop(): Promise<void> {
    this.disconnect();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    rmSync(join(this.dir, KUBELET_SOCKET), { force: true });
  }

  private call<T>(method: string, request: unknown): Promise<T> {
    if (this.plugin === null) throw new Error('no plugin registered');
    const fn = (this.plugin as unknown as Record<string, Unary>)[method];
    if (fn === undefined) throw new Error(`no method ${method}`);
    return new Promise((resolve, reject) => fn.call(this.plugin, request, { deadline: Date.now() + 20_000 }, (e, r) => (e ? reject(e) : resolve(r as T))));
  }

  options(): Promise<RegisterRequest['options']> {
    return this.call('GetDevicePluginOptions', {});
  }

  preferred(available: string[], size: number, must: string[] = []): Promise<string[]> {
    return this.call<{ container_responses: { deviceIDs: string[] }[] }>('GetPreferredAllocation', { container_requests: [{ available_deviceIDs: available, must_include_deviceIDs: must, allocation_size: size }] })
      .then((r) => r.container_responses[0]?.deviceIDs ?? []);
  }

  allocate(...containers: string[][]): Promise<WireAllocation[]> {
    return this.call<{ container_responses: WireAllocation[] }>('Allocate', { container_requests: containers.map((devices_ids) => ({ devices_ids })) }).then((r) => r.container_responses);
  }

  preStart(ids: string[]): Promise<unknown> {
    return this.call('PreStartContainer', { devices_ids: ids });
  }

  /** The latest device list. */
  latest(): WireDevice[] | undefined {
    return this.lists[this.lists.length - 1];
  }
}

export interface PodFixture {
  readonly name: string;
  readonly uid: string;
  readonly namespace?: string;
  readonly node?: string;
  /** Per container: GPU count, and the decision's GPUs for it (absent: no decision for that container). */
  readonly containers: readonly { readonly name?: string; readonly gpus: number; readonly memoryMiB?: number; readonly cores?: number; readonly decided?: readonly string[] }[];
  /** false: no decision annotation yet. */
  readonly decided?: boolean;
  readonly decidedAtMs?: number;
  readonly creationTimestamp?: string;
}

/** The decision the extender's bind writes for a fixture. */
export function decisionFor(f: PodFixture): PodDecision {
  return {
    v: 1, podUid: f.uid, node: f.node ?? 'node-a', decidedAtMs: f.decidedAtMs ?? 1_796_000_000_000,
    containers: f.containers.flatMap((c, index) => (c.decided === undefined ? [] : [{
      name: c.name ?? `c${index}`, index, taskPriority: 1 as const, exclusive: false,
      gpus: c.decided.map((uuid, i) => ({ uuid, index: i, memoryBytes: (c.memoryMiB ?? 4096) * 2 ** 20, coresPercent: c.cores ?? 30, computeMilli: (c.cores ?? 30) * 10 })),
    }])),
  };
}

/** A pod as the API server has it after the extender's bind: bound to the node, decision annotated, Pending. */
export function podJson(f: PodFixture): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: f.name, namespace: f.namespace ?? 'ml', uid: f.uid, creationTimestamp: f.creationTimestamp ?? '2026-12-06T10:00:00Z',
      ...(f.decided === false ? {} : { annotations: { [GPUSHARE_ANNOTATION.decision]: encodeDecision(decisionFor(f)) } }),
    },
    spec: {
      schedulerName: 'gpushare-scheduler',
      nodeName: f.node ?? 'node-a',
      containers: f.containers.map((c, index) => ({
        name: c.name ?? `c${index}`,
        image: 'pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
        resources: { limits: { [RESOURCE.gpu]: String(c.gpus), [RESOURCE.gpumem]: String(c.memoryMiB ?? 4096), [RESOURCE.gpucores]: String(c.cores ?? 30) } },
      })),
    },
    status: { phase: 'Pending' },
  };
}
