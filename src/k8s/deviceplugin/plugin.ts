/**
 * gpushare's device plugin (kubelet device-plugin API v1beta1): the node side of the classic,
 * HAMi-compatible path. It advertises `nvidia.com/gpu` as `split` replicas per GPU with their
 * health, steers the kubelet to replicas of the GPU the extender chose, and in Allocate gives
 * the container the slice of the extender's decision (`gpushare.io/decision`), whatever
 * replicas the kubelet picked: the GPU is the decision's, not the IDs'. Each decision is served
 * once: a ledger on disk and the pod's `gpushare.io/allocated` annotation record it.
 *
 * The pure parts: devices.ts (IDs, health, preference), pending.ts (which pod an Allocate is
 * for), response.ts (the container's envs, mounts and devices); prepared.ts makes the answers
 * and directories ahead, from the pod watch (session 26). This module is the shell.
 */
import { status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type ServiceError } from '@grpc/grpc-js';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu, GpuHealth } from '../../domain/gpu.js';
import { describeIssues } from '../../domain/result.js';
import type { ApiClients } from '../api/client.js';
import { CONTAINER_PATHS, type HostPaths } from '../cdi/spec.js';
import { GoneDirs } from '../cdi/gone-dirs.js';
import { removeTemporaries, writeFileAtomic } from '../cdi/write.js';
import { installLibrary, procDeviceNode } from '../dra/kubelet-host.js';
import type { PluginLog } from '../dra/kubelet-plugin.js';
import { RESOURCE } from '../hami/names.js';
import { advertisedDevices, checkSplit, DEFAULT_SPLIT, preferredReplicas, resolveDeviceIds } from './devices.js';
import { KubeletLink, type RegistrationState } from './kubelet-link.js';
import { Ledger, type LedgerEntry } from './ledger.js';
import { containerKey, describeNoPending, memoDecoder, pendingContainer, type PendingContainer } from './pending.js';
import { NodePods } from './pods.js';
import { PreparedAnswers } from './prepared.js';
import { afterAnswer, QuietQueue } from '../grpc/quiet-queue.js';
import { DEFAULT_DEVICE_PLUGIN_DIR, devicePluginProtos } from './protos.js';
import { containerResponse, type ContainerAllocateResponse } from './response.js';

/** Where the device plugin keeps its state (the ledger, the library) unless configured. */
export const DEFAULT_STATE_DIR = '/var/lib/gpushare/device-plugin';

export type { PluginLog };

/** A change of one GPU's health. */
export interface GpuHealthEvent {
  readonly uuid: string;
  readonly health: GpuHealth;
}

/**
 * Where GPU health comes from: a stream of changes, or an inventory that tells of changes
 * (the DRA plugin's InventorySource, e.g. a PollingInventory over the GPU backend).
 */
export type HealthSource =
  | AsyncIterable<GpuHealthEvent>
  | { current(): readonly Gpu[]; subscribe(listener: () => void): () => void };

export interface DevicePluginOptions {
  /** This node's name (pods bound to it are the ones Allocate serves). */
  readonly nodeName: string;
  /** The node's GPUs (the GPU backend's inventory). */
  readonly gpus: readonly Gpu[];
  readonly health: HealthSource;
  /** The API server (src/k8s/api/client.ts apiClients). */
  readonly api: Pick<ApiClients, 'core' | 'watch'>;
  /** libgpushare.so as this agent has it; installed under `stateDir` at start. */
  readonly library: string;
  /** Default: JSON lines on stderr. */
  readonly log?: PluginLog;
  /** The clock of the ledger's times and of Allocate's wait (Unix ms). */
  readonly now?: () => number;
  /** A GPU's device node; default `/dev/nvidia<minor>` from /proc/driver/nvidia. */
  readonly deviceNode?: (gpu: Gpu) => string;
  /** The kubelet's device-plugin directory; default /var/lib/kubelet/device-plugins. */
  readonly deviceDir?: string;
  /** The plugin's own state (ledger, library, containers' region dirs); default /var/lib/gpushare/device-plugin. Not in deviceDir: the kubelet empties that at its start. */
  readonly stateDir?: string;
  /** The compute boards' directory shared by the node's containers; default `<stateDir>/compute` (give the DRA plugin's to share boards across both paths). */
  readonly computeDir?: string;
  /** Replicas per GPU (HAMi's deviceSplitCount); default 10. */
  readonly split?: number;
  /** Default nvidia.com/gpu. */
  readonly resourceName?: string;
  /** Our socket's file name; default gpushare.sock. */
  readonly socketName?: string;
  /** Ask the kubelet for PreStartContainer (checks the allocation is there); default true. */
  readonly preStartRequired?: boolean;
  /** How long Allocate waits for the pod's decision to reach the watch before refusing; default 10 s. */
  readonly admissionWaitMs?: number;
  /**
   * The pods' `gpushare.io/allocated` patches wait until the kubelet has made no call for this
   * long (quiet-queue.ts says why), and no longer than 100 ms in all; default 5 ms.
   */
  readonly patchQuietMs?: number;
  /**
   * Make each pending container's answer and directory when the watch sees its pod, so Allocate
   * only takes them (prepared.ts); default true. False: both at call time (before session 26).
   */
  readonly prepareAhead?: boolean;
  /** The device-plugin directory's safety-net poll; default 5 s. */
  readonly pollMs?: number;
}

export interface DevicePlugin {
  readonly socket: string;
  registration(): RegistrationState;
  /** The containers served and not yet gone. */
  served(): readonly LedgerEntry[];
  /** The regions of a pod's served containers (each container's directory holds one; it exists once a process attached). */
  regionsOf(podUid: string): readonly string[];
  /** A served container's region (the monitor reads it; it exists once a process attached). */
  regionOf(entry: LedgerEntry): string;
  /** Resolves when the pod annotations of every served container are written (tests, shutdown). */
  settled(): Promise<void>;
  stop(): Promise<void>;
}

type Wire = Record<string, unknown>;

/** JSON lines on stderr, the DaemonSet's log. */
function stderrLog(): PluginLog {
  const line = (level: string) => (message: string, fields?: Record<string, unknown>): void => {
    process.stderr.write(`${JSON.stringify({ level, component: 'device-plugin', message, ...fields })}\n`);
  };
  return { info: line('info'), error: line('error') };
}

/** An Allocate refusal: a gRPC status the kubelet shows in the pod's UnexpectedAdmissionError. */
class Refusal extends Error {
  constructor(readonly code: status, message: string) {
    super(message);
  }
}

/** Starts the plugin: state, pod watch, then serving and registering. */
export async function startDevicePlugin(options: DevicePluginOptions): Promise<DevicePlugin> {
  const log = options.log ?? stderrLog();
  const now = options.now ?? Date.now;
  const split = checkSplit(options.split ?? DEFAULT_SPLIT);
  if (!split.ok) throw new Error(`device plugin: ${describeIssues(split.issues)}`);
  const gpus = options.gpus;
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const containersDir = join(stateDir, 'containers');
  const computeDir = options.computeDir ?? join(stateDir, 'compute');
  const hostLibrary = join(stateDir, 'lib', 'libgpushare.so');
  const hostPreload = join(stateDir, 'ld.so.preload');
  const admissionWaitMs = options.admissionWaitMs ?? 10_000;
  let stopping = false;
  const nodeOf = new Map(gpus.map((g) => [g.uuid, (options.deviceNode ?? ((x: Gpu) => procDeviceNode(x)))(g)]));

  for (const dir of [stateDir, containersDir, join(stateDir, 'lib'), computeDir]) mkdirSync(dir, { recursive: true });
  chmodSync(computeDir, 0o1777); // every container's processes, whatever their user, meet on the boards
  // The ledger first: its lock (slot-file.ts) refuses a second agent on this node before it
  // touches anything of the first's (temporaries, the library, containers' directories).
  const ledger = new Ledger(join(stateDir, 'ledger.json'));
  // Deleted pods' container directories, removed off the event loop (gone-dirs.ts says why).
  const gone = new GoneDirs(join(stateDir, 'gone'), (path, error) => log.error('removing a deleted pod\'s container directory failed', { path, error: error.message }));
  try {
    gone.reset();
    removeTemporaries(stateDir);
    installLibrary(options.library, hostLibrary);
    writeFileAtomic(hostPreload, `${CONTAINER_PATHS.library}\n`);
  } catch (e) {
    ledger.close();
    throw e;
  }

  const containerDir = (podUid: string, index: number): string => join(containersDir, `${podUid}_${index}`);
  const hostPaths = (podUid: string, index: number): HostPaths => ({ library: hostLibrary, preload: hostPreload, claimDir: containerDir(podUid, index), computeDir });
  const makeContainerDir = (podUid: string, index: number): void => {
    const dir = containerDir(podUid, index);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777); // the region is created by the container's first process, whatever its user
  };
  const forget = (podUids: ReadonlySet<string>): void => {
    for (const e of ledger.removePods(podUids)) gone.discard(containerDir(e.podUid, e.index));
  };

  // Health: a full list to every ListAndWatch stream on every change.
  const health = new Map<string, GpuHealth>(gpus.map((g) => [g.uuid, g.health]));
  const streams = new Set<ServerWritableStream<unknown, Wire>>();
  const devices = (): Wire => ({ devices: advertisedDevices(gpus.map((g) => ({ ...g, health: health.get(g.uuid) ?? g.health })), split.value) });
  const setHealth = (uuid: string, h: GpuHealth): void => {
    if (!health.has(uuid) || health.get(uuid) === h) return;
    health.set(uuid, h);
    log.info('GPU health changed', { uuid, health: h });
    const message = devices();
    for (const s of streams) s.write(message);
  };
  let stopHealth: () => void;
  const source = options.health;
  if (Symbol.asyncIterator in source) {
    const it = source[Symbol.asyncIterator]();
    let done = false;
    void (async () => {
      while (!done) {
        const next = await it.next().catch((e: unknown) => {
          log.error('the GPU health source failed', { error: (e as Error).message });
          return { done: true as const, value: undefined };
        });
        if (next.done === true || done) break;
        setHealth(next.value.uuid, next.value.health);
      }
    })();
    stopHealth = () => {
      done = true;
      Promise.resolve(it.return?.()).catch(() => undefined); // a source that fails to close has nothing more to say
    };
  } else {
    const read = (): void => {
      for (const g of source.current()) setHealth(g.uuid, g.health);
    };
    stopHealth = source.subscribe(read);
    read();
  }

  // The node's pods: served containers of a deleted pod are forgotten, their directories removed.
  const pods = new NodePods(options.api, options.nodeName, log);
  // Allocate's answers made ahead, from the watch (prepared.ts); set up once the start's clean-up is done.
  let prepared: PreparedAnswers | null = null;
  pods.onDelete((pod) => {
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    forget(new Set([uid]));
    prepared?.remove(uid);
  });
  const decode = memoDecoder();
  const background = new QuietQueue(options.patchQuietMs ?? 5, 100);
  const annotating = new Set<Promise<void>>();
  const annotate = (pod: PendingContainer['pod'], entries: readonly LedgerEntry[]): void => {
    const p = pods.recordAllocated(pod, entries.map((e) => ({ index: e.index, name: e.container, gpus: e.gpus, deviceIds: e.deviceIds, atMs: e.atMs })))
      .then((recorded) => { if (recorded) ledger.markAnnotated(entries.map((e) => e.key)); })
      .catch((e: unknown) => log.error('recording the allocation on the pod failed (the ledger has it; retried at the next start)', { pod: `${pod.namespace}/${pod.name}`, error: (e as Error).message }))
      .finally(() => annotating.delete(p));
    annotating.add(p);
  };
  try {
    await pods.start();
  } catch (e) {
    stopHealth();
    ledger.close(); // the lock goes with a start that failed: a retry in this process must not meet it
    throw e;
  }
  if (pods.synced()) {
    // Reconcile with the API server: a served pod no longer bound here is gone; an entry its pod
    // does not record yet is recorded; a container directory no entry names is left over.
    const live = new Map(pods.list().map((p) => [p.metadata?.uid ?? '', p]));
    forget(new Set(ledger.all().filter((e) => !live.has(e.podUid)).map((e) => e.podUid)));
    const unrecorded = new Map<string, LedgerEntry[]>();
    for (const e of ledger.all()) if (!e.annotated) unrecorded.set(e.podUid, [...(unrecorded.get(e.podUid) ?? []), e]);
    for (const [, entries] of unrecorded) {
      const e = entries[0]!;
      annotate({ namespace: e.namespace, name: e.pod, uid: e.podUid }, entries);
    }
  }
  const named = new Set(ledger.all().map((e) => `${e.podUid}_${e.index}`));
  try {
    for (const d of readdirSync(containersDir)) if (!named.has(d)) rmSync(join(containersDir, d), { recursive: true, force: true });
  } catch (e) {
    stopHealth();
    await pods.stop();
    ledger.close();
    throw e;
  }
  const answerOf = (pod: PendingContainer['pod'], container: PendingContainer['container']): ContainerAllocateResponse =>
    containerResponse(pod, container, hostPaths(pod.uid, container.index), (uuid) => nodeOf.get(uuid) ?? '');
  const ready = new PreparedAnswers({
    node: options.nodeName, decode, served: (key) => ledger.has(key), hasGpu: (uuid) => nodeOf.has(uuid), answer: answerOf, makeDir: makeContainerDir,
    dropDir: (podUid, index) => {
      try {
        gone.discard(containerDir(podUid, index));
      } catch (e) {
        log.error('removing a container directory made ahead for a pod that went failed', { path: containerDir(podUid, index), error: (e as Error).message });
      }
    },
    onError: (podUid, index, e) => log.error('making a container directory ahead failed (Allocate makes it)', { path: containerDir(podUid, index), error: e.message }),
  });
  if (options.prepareAhead ?? true) {
    pods.onUpsert((pod) => {
      try {
        ready.update(pod);
      } catch (e) {
        // Never into the watch's event loop: Allocate makes at call time what was not made here.
        log.error('making a pod\'s Allocate answers ahead failed (Allocate makes them)', { pod: `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`, error: (e as Error).message });
      }
    });
    for (const pod of pods.list()) ready.update(pod);
    prepared = ready;
  }

  /** The pending container for `count` GPUs, waiting for the watch up to admissionWaitMs. */
  const awaitPending = async (count: number, taken: ReadonlySet<string>): Promise<PendingContainer> => {
    const deadline = now() + admissionWaitMs;
    const served = (key: string): boolean => taken.has(key) || ledger.has(key);
    for (;;) {
      const choice = pendingContainer(pods.list(), options.nodeName, count, served, decode);
      if (choice.found !== null) return choice.found;
      const left = deadline - now();
      if (left <= 0 || stopping) {
        throw new Refusal(status.FAILED_PRECONDITION, `${describeNoPending(options.nodeName, count, choice.passed)}${pods.synced() ? '' : ' (the pod list has not come from the API server yet)'}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, left);
        const unsubscribe = pods.onChange(done);
        function done(): void {
          clearTimeout(timer);
          unsubscribe();
          resolve();
        }
      });
    }
  };

  const allocate = async (requests: readonly { devices_ids: string[] }[]): Promise<ContainerAllocateResponse[]> => {
    const resolved = requests.map((r, i) => {
      const ids = resolveDeviceIds(r.devices_ids, gpus, split.value);
      if (!ids.ok) throw new Refusal(status.INVALID_ARGUMENT, `container request ${i}: ${describeIssues(ids.issues)}`);
      if (ids.value.length === 0) throw new Refusal(status.INVALID_ARGUMENT, `container request ${i} names no device`);
      return ids.value;
    });
    // Find every container first (waiting if the watch lags), then decide and record with no
    // await in between, so two calls can never take the same decision.
    for (;;) {
      const taken = new Set<string>();
      const found: PendingContainer[] = [];
      for (const ids of resolved) {
        const f = await awaitPending(ids.length, taken);
        taken.add(containerKey(f.pod.uid, f.container.index));
        found.push(f);
      }
      if (found.some((f) => ledger.has(containerKey(f.pod.uid, f.container.index)))) continue; // another call took one meanwhile
      const at = now();
      const entries: LedgerEntry[] = found.map((f, i) => ({
        key: containerKey(f.pod.uid, f.container.index), podUid: f.pod.uid, namespace: f.pod.namespace, pod: f.pod.name, index: f.container.index,
        container: f.container.name, gpus: f.container.gpus.map((g) => g.uuid), deviceIds: resolved[i]!.map((r) => r.id), atMs: at, annotated: false,
      }));
      for (const f of found) {
        const missing = f.container.gpus.find((g) => !nodeOf.has(g.uuid));
        if (missing !== undefined) {
          throw new Refusal(status.FAILED_PRECONDITION, `pod ${f.pod.namespace}/${f.pod.name}: its decision gives container ${JSON.stringify(f.container.name)} GPU ${missing.uuid}, which node ${options.nodeName} does not have (${gpus.map((g) => g.uuid).join(', ')})`);
        }
      }
      // The answers made ahead from these very decisions (their directories made then too), else made now.
      const ahead = found.map((f) => ready.take(f));
      try {
        entries.forEach((e, i) => {
          if (ahead[i] === undefined) makeContainerDir(e.podUid, e.index);
        });
        ledger.add(entries);
      } catch (e) {
        for (const x of entries) if (!ledger.has(x.key)) rmSync(containerDir(x.podUid, x.index), { recursive: true, force: true });
        throw new Refusal(status.INTERNAL, `recording the allocation failed: ${(e as Error).message}`);
      }
      const byPod = new Map<string, { pod: PendingContainer['pod']; entries: LedgerEntry[] }>();
      found.forEach((f, i) => {
        const e = entries[i]!;
        byPod.set(f.pod.uid, { pod: f.pod, entries: [...(byPod.get(f.pod.uid)?.entries ?? []), e] });
      });
      afterAnswer(() => {
        found.forEach((f, i) => {
          const e = entries[i]!;
          log.info('allocated', { pod: `${f.pod.namespace}/${f.pod.name}`, container: f.container.name, gpus: e.gpus, deviceIds: e.deviceIds });
        });
      });
      // Once the kubelet's calls pause: the patch's request is work the kubelet need not wait for.
      background.add(() => {
        if (stopping) return; // the ledger says it is not recorded yet: the next start records it
        for (const { pod, entries: es } of byPod.values()) annotate(pod, es);
      });
      return found.map((f, i) => ahead[i] ?? answerOf(f.pod, f.container));
    }
  };

  const unary = <Req>(name: string, handler: (request: Req) => Promise<Wire> | Wire) =>
    (call: ServerUnaryCall<Req, Wire>, callback: sendUnaryData<Wire>): void => {
      background.busy();
      Promise.resolve().then(() => handler(call.request)).then(
        (answer) => callback(null, answer),
        (e: unknown) => {
          const refusal = e instanceof Refusal ? e : new Refusal(status.INTERNAL, `internal error: ${(e as Error).message}`);
          log.error(`${name} refused`, { error: refusal.message });
          callback({ code: refusal.code, details: `${name}: ${refusal.message}` } as Partial<ServiceError> as ServiceError);
        },
      );
    };

  const preStartRequired = options.preStartRequired ?? true;
  const pluginOptions = { pre_start_required: preStartRequired, get_preferred_allocation_available: true };
  const link = new KubeletLink({
    dir: options.deviceDir ?? DEFAULT_DEVICE_PLUGIN_DIR,
    socketName: options.socketName ?? 'gpushare.sock',
    resourceName: options.resourceName ?? RESOURCE.gpu,
    options: pluginOptions,
    pollMs: options.pollMs ?? 5000,
    log,
    service: devicePluginProtos().devicePlugin.service,
    implementation: {
      GetDevicePluginOptions: unary('GetDevicePluginOptions', () => pluginOptions),
      ListAndWatch: (call: ServerWritableStream<unknown, Wire>) => {
        streams.add(call);
        const end = (): void => {
          streams.delete(call);
        };
        call.on('cancelled', end);
        call.on('close', end);
        call.write(devices());
      },
      GetPreferredAllocation: unary('GetPreferredAllocation', (request: { container_requests: { available_deviceIDs: string[]; must_include_deviceIDs: string[]; allocation_size: number }[] }) => ({
        container_responses: request.container_requests.map((r) => {
          const choice = pendingContainer(pods.list(), options.nodeName, r.allocation_size, (key) => ledger.has(key), decode);
          const wanted = choice.found === null ? [] : choice.found.container.gpus.map((g) => g.uuid);
          return { deviceIDs: preferredReplicas(r.available_deviceIDs, r.must_include_deviceIDs, r.allocation_size, wanted) };
        }),
      })),
      Allocate: unary('Allocate', async (request: { container_requests: { devices_ids: string[] }[] }) => ({ container_responses: await allocate(request.container_requests) })),
      PreStartContainer: unary('PreStartContainer', (request: { devices_ids: string[] }) => {
        const entry = ledger.byDeviceIds(request.devices_ids);
        if (entry === undefined) throw new Refusal(status.FAILED_PRECONDITION, `no container was allocated devices ${request.devices_ids.join(', ') || '(none)'} on node ${options.nodeName}: Allocate must come first`);
        if (!existsSync(containerDir(entry.podUid, entry.index))) makeContainerDir(entry.podUid, entry.index); // removed behind our back: the mount must be there
        return {};
      }),
    },
  });
  try {
    await link.start();
  } catch (e) {
    stopHealth();
    await pods.stop();
    ledger.close();
    throw e;
  }

  const regionOf = (e: LedgerEntry): string => join(containerDir(e.podUid, e.index), 'region');
  return {
    socket: link.socket,
    registration: () => link.registration(),
    served: () => ledger.all(),
    regionsOf: (podUid) => ledger.all().filter((e) => e.podUid === podUid).map(regionOf),
    regionOf,
    async settled() {
      background.flush(); // the patches waiting for the kubelet's calls to pause start now
      while (annotating.size > 0) await Promise.all([...annotating]);
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      background.dispose(); // patches not started: the ledger says so, and the next start records them
      stopHealth();
      for (const s of streams) s.end();
      streams.clear();
      await link.stop();
      await pods.stop();
      await Promise.race([Promise.all([...annotating]), new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      await gone.settled();
      ledger.close();
    },
  };
}

export type { RegistrationState } from './kubelet-link.js';
