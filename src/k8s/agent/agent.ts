/**
 * The node agent: the daemon's Kubernetes mode, one DaemonSet pod per GPU node. It reads the
 * node's GPUs from one backend into ONE polled inventory and, with ONE LayoutConfig, publishes
 * them both ways: the `gpushare.io/node-gpus` Node annotation (the classic path's extender) and
 * the ResourceSlices (DRA); it serves the DRA kubelet plugin, runs the classic device plugin
 * where one is plugged in, suspends and resumes pods for preemption (suspender.ts), and answers
 * the DaemonSet's probes. A GPU that turns unhealthy leaves the slices and is marked lost in the
 * annotation on the next poll.
 *
 * Stopping (SIGTERM) closes the sockets (the kubelet deregisters the plugin) and leaves every
 * piece of state where a restarted agent picks it up: prepared claims' checkpoint and CDI
 * specs, the slices and the annotation (they stay true while the GPUs do), suspended pods.
 */
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { ErrorCodes, GsError } from '../../domain/index.js';
import type { GpuBackend } from '../../gpu/backend.js';
import type { CheckpointApi } from '../../gpu/checkpoint.js';
import { apiClients, apiFailure } from '../api/client.js';
import { apiClaimSource } from '../dra/kubelet-claims.js';
import { PollingInventory, type InventorySource } from '../dra/kubelet-inventory.js';
import { startDraKubeletPlugin, type DraKubeletPlugin } from '../dra/kubelet-plugin.js';
import { SlicePublisher } from '../dra/publisher.js';
import { publishedDevices } from '../dra/slices.js';
import type { Gpu } from '../../domain/gpu.js';
import type { AgentConfig } from './config.js';
import { startHealthServer, type HealthServer, type ReadinessCheck } from './health.js';
import { pluginLog, type AgentLog } from './log.js';
import { startAgentMonitor, type AgentMonitor } from './metrics.js';
import { NodeGpusAnnotation, nodeGpusOf } from './node-inventory.js';
import { claimRegion, combinedLocator, draRegionLocator, type RegionLocator } from './pod-processes.js';
import { watchNodePods, type NodePods } from './node-pods.js';
import { draOwners, type PodSliceOwner } from './pod-slices.js';
import { Suspender } from './suspender.js';
import { deviceClassicPlugin, type ClassicPlugin, type StartClassicPlugin } from './classic.js';

export type { ClassicPlugin, ClassicPluginHost, StartClassicPlugin } from './classic.js';

export interface NodeAgentOptions {
  readonly config: AgentConfig;
  readonly backend: GpuBackend;
  readonly kubeConfig: KubeConfig;
  readonly log: AgentLog;
  /** The CUDA checkpoint API (suspend/resume), or why there is none. */
  readonly checkpoint: { readonly ok: true; readonly value: CheckpointApi } | { readonly ok: false; readonly error: { readonly message: string } };
  /** The classic path's device plugin (tests); default: this project's (deviceClassicPlugin) when config.classic.enabled. */
  readonly startClassic?: StartClassicPlugin;
  /** A GPU's device node for CDI specs (tests; default from /proc/driver/nvidia). */
  readonly deviceNode?: (gpu: Gpu) => string;
  /** Extra region locators (tests; the classic plugin's is added by the agent). */
  readonly locators?: readonly RegionLocator[];
  /** Extra slice owners for the monitor (tests; the classic plugin's and the DRA claims' are added by the agent). */
  readonly sliceOwners?: () => readonly PodSliceOwner[];
}

export interface NodeAgent {
  readonly nodeName: string;
  readonly inventory: InventorySource;
  readonly publisher: SlicePublisher;
  readonly annotation: NodeGpusAnnotation;
  readonly draPlugin: DraKubeletPlugin | null;
  readonly suspender: Suspender | null;
  readonly health: HealthServer;
  /** GET /metrics and its sampler; null when config.metrics.listen is null. */
  readonly monitor: AgentMonitor | null;
  /** What is not ready now (the /readyz answer). */
  notReady: ReadinessCheck;
  /** Reads the GPUs now, republishing if they changed (the poll does this on its own). */
  poll(): void;
  /** Resolves when the publications in flight have landed (tests). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** Starts every part in order; on a failure, stops what started and throws (nothing left running). */
export async function startNodeAgent(options: NodeAgentOptions): Promise<NodeAgent> {
  const { config, backend, log } = options;
  const nodeName = config.nodeName;
  const first = backend.gpus();
  // A layout the GPUs cannot be published in: say so now, before anything is written.
  publishedDevices(first, config.layout);

  const api = apiClients(options.kubeConfig);
  let nodeUid: string | undefined;
  try {
    nodeUid = (await api.core.readNode({ name: nodeName })).metadata?.uid;
  } catch (e) {
    const f = apiFailure(e);
    if (f.code === 404) throw new GsError(ErrorCodes.notFound, `node ${nodeName} does not exist in the cluster: is --node-name (NODE_NAME) the node's name?`);
    throw new Error(`cannot read node ${nodeName} from the API server: ${f.code === 0 ? '' : `HTTP ${f.code}: `}${f.message}`, { cause: e });
  }

  const stack: (() => Promise<void> | void)[] = [];
  const unwind = async (): Promise<void> => {
    for (const undo of stack.reverse()) {
      try {
        await undo();
      } catch (e) {
        log.warn({ event: 'agent.stop', error: (e as Error).message }, 'a part failed to stop');
      }
    }
  };
  try {
    const inventory = new PollingInventory(() => backend.gpus(), config.pollMs);
    stack.push(() => inventory.close());
    const system = backend.system();
    const driver = { driverVersion: system.driverVersion, cudaDriverVersion: system.cudaDriverVersion };

    const annotation = new NodeGpusAnnotation(api.core, nodeName, log);
    stack.push(() => annotation.stop());
    const publisher = new SlicePublisher({ api, nodeName, ...(nodeUid !== undefined ? { nodeUid } : {}), layout: config.layout, inventory: { gpus: inventory.current(), driver }, log });
    stack.push(() => publisher.stop());
    await Promise.all([annotation.set(nodeGpusOf(inventory.current(), config.layout)), publisher.start()]);

    let draPlugin: DraKubeletPlugin | null = null;
    if (config.dra.enabled) {
      draPlugin = await startDraKubeletPlugin({
        poolName: nodeName,
        claims: apiClaimSource(options.kubeConfig),
        inventory,
        library: config.dra.library,
        layout: config.layout,
        registryDir: config.dra.registryDir,
        pluginDir: config.dra.pluginDir,
        cdiDir: config.dra.cdiDir,
        log: pluginLog(log, 'dra-kubelet-plugin'),
        ...(options.deviceNode !== undefined ? { deviceNode: options.deviceNode } : {}),
      });
      const started = draPlugin;
      stack.push(() => started.close());
    }

    let classic: ClassicPlugin | null = null;
    if (config.classic.enabled) {
      const startClassic = options.startClassic ?? deviceClassicPlugin(config.classic.settings);
      classic = await startClassic({
        nodeName,
        kubeConfig: options.kubeConfig,
        inventory,
        layout: config.layout,
        log,
        library: config.dra.library,
        ...(draPlugin !== null ? { computeDir: join(draPlugin.stateDir, 'compute') } : {}),
        ...(options.deviceNode !== undefined ? { deviceNode: options.deviceNode } : {}),
      });
      const started = classic;
      stack.push(() => started.close());
    }

    let pending: Promise<unknown> = Promise.resolve();
    const republish = (): void => {
      const gpus = inventory.current();
      let nodeGpus;
      try {
        nodeGpus = nodeGpusOf(gpus, config.layout);
        publisher.setInventory({ gpus, driver });
      } catch (e) {
        // A GPU that changed so the layout no longer fits it (a smaller memory reading): keep what is published.
        log.error({ event: 'agent.inventory.unpublishable', node: nodeName, error: (e as Error).message }, 'the new GPU inventory cannot be published: keeping the last one');
        return;
      }
      log.info({ event: 'agent.inventory', node: nodeName, gpus: gpus.length, healthy: gpus.filter((g) => g.health === 'ok').length }, 'GPU inventory changed: republishing the annotation and the slices');
      pending = Promise.all([pending, annotation.set(nodeGpus)]);
      suspender?.kick();
    };

    const locators = [...(options.locators ?? []), ...(draPlugin !== null ? [draRegionLocator(() => (draPlugin as DraKubeletPlugin).prepared(), draPlugin.stateDir)] : []), ...(classic !== null ? [classic] : [])];
    let suspender: Suspender | null = null;
    if (config.suspend.enabled) {
      suspender = new Suspender({
        kubeConfig: options.kubeConfig,
        nodeName,
        checkpoint: options.checkpoint,
        locator: combinedLocator(locators),
        gpus: () => nodeGpusOf(inventory.current(), config.layout),
        lockTimeoutMs: config.suspend.lockTimeoutMs,
        evictOnFailure: config.suspend.evictOnFailure,
        stateFile: config.suspend.stateFile,
        log,
      });
      const started = suspender;
      stack.push(() => started.stop());
      await suspender.start();
    }
    const unsubscribe = inventory.subscribe(republish);
    stack.push(unsubscribe);

    const notReady: ReadinessCheck = () => {
      const out: { part: string; reason: string }[] = [];
      if (publisher.published === null) out.push({ part: 'resourceslices', reason: 'not yet published' });
      if (annotation.current === null) out.push({ part: 'node-gpus', reason: 'annotation not yet written' });
      const registration = draPlugin?.registration();
      if (registration?.state === 'refused') out.push({ part: 'dra-kubelet-plugin', reason: `the kubelet refused the registration: ${registration.error}` });
      const classicWhy = classic?.notReady() ?? null;
      if (classicWhy !== null) out.push({ part: 'device-plugin', reason: classicWhy });
      return out;
    };
    const health = await startHealthServer(config.health, notReady);
    stack.push(() => health.close());

    let monitor: AgentMonitor | null = null;
    if (config.metrics.listen !== null) {
      const dra = draPlugin;
      // The DRA claims' pods: the suspender's watch where it runs, else one of the monitor's own.
      let pods: NodePods | null = suspender;
      if (dra !== null && pods === null) {
        const watch = await watchNodePods(options.kubeConfig, nodeName, log);
        stack.push(() => watch.stop());
        pods = watch;
      }
      const podsOfClaims = pods;
      const owners = (): PodSliceOwner[] => [
        ...(options.sliceOwners?.() ?? []),
        ...(classic?.slices?.() ?? []),
        ...(dra === null ? [] : draOwners(dra.prepared(), (c) => claimRegion(dra.stateDir, c), podsOfClaims?.boundPods() ?? [])),
      ];
      const suspending = suspender;
      monitor = await startAgentMonitor({ listen: config.metrics.listen, sampleMs: config.metrics.sampleMs, compat: config.metrics.compat, nodeName, gpus: () => backend.gpus(), owners, log, ...(suspending !== null ? { suspended: (uid: string) => suspending.isSuspended(uid) } : {}) });
      const started = monitor;
      stack.push(() => started.close());
    }
    log.info({ event: 'agent.started', node: nodeName, backend: backend.description, gpus: first.length, layout: config.layout.kind, dra: config.dra.enabled, classic: config.classic.enabled, suspend: config.suspend.enabled, health: health.address, metrics: monitor?.address ?? null }, 'node agent started');

    let closed = false;
    return {
      nodeName,
      inventory,
      publisher,
      annotation,
      draPlugin,
      suspender,
      health,
      monitor,
      notReady,
      poll: () => inventory.poll(),
      async settled() {
        await pending;
        await publisher.settled();
        await suspender?.settled();
      },
      async close() {
        if (closed) return;
        closed = true;
        log.info({ event: 'agent.stopping', node: nodeName }, 'node agent stopping: sockets closed, state kept for the next start');
        await unwind();
      },
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}
