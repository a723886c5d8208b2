/**
 * The classic path's Allocate for pods-flow.ts: the real device plugin (src/k8s/deviceplugin)
 * started against a fake API server, registered with a fake kubelet over real Unix sockets, and
 * asked for each pod as the kubelet asks: the pod bound to the node with the extender's decision
 * annotated, then Allocate for one replica of the decided GPU. One pod at a time, since the
 * plugin gives an Allocate to the oldest pending decision on that GPU, as HAMi's does: a kubelet
 * admits pods one by one.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../../src/domain/gpu.js';
import { describeIssues } from '../../src/domain/result.js';
import { apiClients } from '../../src/k8s/api/client.js';
import { StaticInventory } from '../../src/k8s/dra/kubelet-inventory.js';
import { parseWholeQuantity } from '../../src/k8s/hami/quantity.js';
import { startDevicePlugin } from '../../src/k8s/deviceplugin/plugin.js';
import { FakeKubelet, podJson } from './device-plugin-fixtures.js';
import { startFakeApiServer } from './fake-apiserver.js';
import type { AllocateSource, PodDefinition } from './pods-flow.js';

const MIB = 2 ** 20;

export interface PluginAllocateSource extends AllocateSource {
  /** The plugin's state directory (its ledger and each container's region directory). */
  readonly stateDir: string;
  close(): Promise<void>;
}

/** Starts the plugin and its kubelet; every pod lands on the first GPU, as the DRA path's do. */
export async function startPluginAllocate(options: { readonly root: string; readonly node: string; readonly gpus: readonly Gpu[]; readonly library: string; readonly deviceNode?: (gpu: Gpu) => string }): Promise<PluginAllocateSource> {
  const gpu = options.gpus[0];
  if (gpu === undefined) throw new Error('the allocate path needs a GPU');
  const deviceDir = join(options.root, 'device-plugins');
  const stateDir = join(options.root, 'device-plugin');
  mkdirSync(deviceDir, { recursive: true });
  const api = await startFakeApiServer();
  const kubelet = new FakeKubelet(deviceDir);
  await kubelet.start();
  let replica = 0;
  let queue: Promise<unknown> = Promise.resolve();
  try {
    const plugin = await startDevicePlugin({
      nodeName: options.node, gpus: options.gpus, health: new StaticInventory(options.gpus), api: apiClients(api.kubeConfig()), library: options.library,
      deviceDir, stateDir, split: 64, admissionWaitMs: 10_000, log: { info: () => undefined, error: () => undefined },
      ...(options.deviceNode === undefined ? {} : { deviceNode: options.deviceNode }),
    });
    const allocateOne = async (pod: PodDefinition): Promise<unknown> => {
      const memory = parseWholeQuantity(pod.memory, `pod ${pod.name} memory`);
      if (!memory.ok) throw new Error(describeIssues(memory.issues));
      const n = replica++;
      api.seed('pods', podJson({ name: pod.name, uid: randomUUID(), node: options.node, decidedAtMs: Date.now() + n, containers: [{ gpus: 1, memoryMiB: Math.floor(memory.value / MIB), cores: pod.cores, decided: [gpu.uuid] }] }));
      const [answer] = await kubelet.allocate([`${gpu.uuid}::${n}`]);
      return answer;
    };
    return {
      stateDir,
      allocate(pod) {
        const next = queue.then(() => allocateOne(pod));
        queue = next.catch(() => undefined);
        return next;
      },
      async close() {
        await plugin.stop();
        await kubelet.stop();
        await api.close();
      },
    };
  } catch (e) {
    await kubelet.stop();
    await api.close();
    throw e;
  }
}
