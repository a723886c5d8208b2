/**
 * The classic (HAMi-compatible) path inside the node agent: the v1beta1 device plugin started
 * on the agent's own inventory, so one process publishes the node's GPUs both ways and one
 * suspender finds a pod's processes whichever path gave it its slice.
 */
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import type { Gpu } from '../../domain/gpu.js';
import { apiClients } from '../api/client.js';
import { startDevicePlugin, type DevicePluginOptions, type RegistrationState } from '../deviceplugin/plugin.js';
import type { InventorySource } from '../dra/kubelet-inventory.js';
import type { LayoutConfig } from '../dra/slices.js';
import { pluginLog, type AgentLog } from './log.js';
import type { RegionLocator } from './pod-processes.js';
import type { PodSliceOwner } from './pod-slices.js';

/**
 * What the classic (HAMi-compatible) device plugin gets from the agent: the same inventory and
 * layout the other two publications use.
 */
export interface ClassicPluginHost {
  readonly nodeName: string;
  readonly kubeConfig: KubeConfig;
  readonly inventory: InventorySource;
  readonly layout: LayoutConfig;
  readonly log: AgentLog;
  /** libgpushare.so as the agent's image has it. */
  readonly library: string;
  /** The DRA plugin's compute-board directory when it runs, so both paths' containers share a GPU's board. */
  readonly computeDir?: string;
  /** A GPU's device node (tests; default from /proc/driver/nvidia). */
  readonly deviceNode?: (gpu: Gpu) => string;
}

/** The running device plugin as the agent needs it. */
export interface ClassicPlugin extends RegionLocator {
  /** Why it is not ready (not registered with the kubelet, ...), or null. */
  notReady(): string | null;
  /** The containers it served and their regions, for the monitor; absent: none to show. */
  slices?(): readonly PodSliceOwner[];
  close(): Promise<void>;
}

export type StartClassicPlugin = (host: ClassicPluginHost) => Promise<ClassicPlugin>;

/** What the agent's configuration may set of the device plugin; the rest comes from the host. */
export type ClassicSettings = Pick<DevicePluginOptions, 'split' | 'resourceName' | 'stateDir' | 'deviceDir'>;

/** Why a plugin in this registration state is not ready, or null when it is. */
export function classicNotReady(state: RegistrationState): string | null {
  if (state.state === 'registered') return null;
  if (state.state === 'failed') return `the device plugin could not register with the kubelet: ${state.error}`;
  return 'the device plugin has not registered with the kubelet yet';
}

/** A StartClassicPlugin that runs this project's device plugin (src/k8s/deviceplugin). */
export function deviceClassicPlugin(settings: ClassicSettings = {}): StartClassicPlugin {
  return async (host: ClassicPluginHost): Promise<ClassicPlugin> => {
    const plugin = await startDevicePlugin({
      ...settings,
      nodeName: host.nodeName,
      gpus: host.inventory.current(),
      health: host.inventory,
      api: apiClients(host.kubeConfig),
      library: host.library,
      log: pluginLog(host.log, 'device-plugin'),
      ...(host.computeDir !== undefined ? { computeDir: host.computeDir } : {}),
      ...(host.deviceNode !== undefined ? { deviceNode: host.deviceNode } : {}),
    });
    return {
      regionsOf: (pod: V1Pod) => (pod.metadata?.uid === undefined ? [] : plugin.regionsOf(pod.metadata.uid)),
      notReady: () => classicNotReady(plugin.registration()),
      slices: () => plugin.served().map((e) => ({ namespace: e.namespace, pod: e.pod, podUid: e.podUid, container: e.container, gpus: e.gpus, region: plugin.regionOf(e) })),
      close: () => plugin.stop(),
    };
  };
}
