/**
 * The kubelet plugin as the node agent runs it: GPUs from the node's GPU backend (polled),
 * claims from the API server, the pool named after the node (as the ResourceSlice publisher
 * names it). A composition of startDraKubeletPlugin's parts; close() stops them all.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { GpuBackend } from '../../gpu/backend.js';
import { apiClaimSource } from './kubelet-claims.js';
import { PollingInventory } from './kubelet-inventory.js';
import { startDraKubeletPlugin, type DraKubeletPlugin, type DraKubeletPluginOptions } from './kubelet-plugin.js';

export interface NodeDraKubeletPluginOptions extends Omit<DraKubeletPluginOptions, 'poolName' | 'claims' | 'inventory'> {
  readonly nodeName: string;
  readonly backend: GpuBackend;
  readonly kubeConfig: KubeConfig;
  /** How often the GPUs are read for the health stream (ms); default 5 s. */
  readonly pollMs?: number;
}

export async function startNodeDraKubeletPlugin(options: NodeDraKubeletPluginOptions): Promise<DraKubeletPlugin> {
  const inventory = new PollingInventory(() => options.backend.gpus(), options.pollMs ?? 5000);
  let plugin: DraKubeletPlugin;
  try {
    plugin = await startDraKubeletPlugin({ ...options, poolName: options.nodeName, claims: apiClaimSource(options.kubeConfig), inventory });
  } catch (e) {
    inventory.close();
    throw e;
  }
  return {
    ...plugin,
    registration: () => plugin.registration(),
    prepared: () => plugin.prepared(),
    async close() {
      inventory.close();
      await plugin.close();
    },
  };
}
