/** The node agent's composition: the simulated GPU backend's GPUs reach the kubelet's health stream. */
import { KubeConfig } from '@kubernetes/client-node';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { openBackend } from '../../src/gpu/open.js';
import { startNodeDraKubeletPlugin } from '../../src/k8s/dra/kubelet-node.js';
import type { DraKubeletPlugin } from '../../src/k8s/dra/kubelet-plugin.js';
import { FakeKubelet, type WireHealth } from './dra-kubelet-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'gs-dra-node-'));
const kubelet = new FakeKubelet();
let plugin: DraKubeletPlugin | null = null;

afterEach(async () => {
  kubelet.close();
  await plugin?.close();
  rmSync(root, { recursive: true, force: true });
});

it('serves the backend\'s GPUs, in the pool named after the node', async () => {
  writeFileSync(join(root, 'libgpushare.so'), 'x');
  const { backend } = openBackend({ simulate: '2xH100-80GB' });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({ clusters: [{ name: 'c', server: 'http://127.0.0.1:9' }], users: [{ name: 'u' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x' });
  plugin = await startNodeDraKubeletPlugin({
    nodeName: 'gpu-node-7', backend, kubeConfig, library: join(root, 'libgpushare.so'), pollMs: 50,
    registryDir: join(root, 'registry'), pluginDir: join(root, 'plugins'), cdiDir: join(root, 'cdi'), log: { info: () => undefined, error: () => undefined },
  });
  const stream = kubelet.watch(plugin.pluginSocket, 'healthV1');
  const first = await new Promise<WireHealth>((resolve) => stream.once('data', resolve));
  expect(first.devices.map((d) => `${d.device.pool_name}/${d.device.device_name} ${d.health}`)).toEqual(['gpu-node-7/gpu-0 HEALTHY', 'gpu-node-7/gpu-1 HEALTHY']);
  stream.cancel();
  expect(kubelet.streamErrors).toEqual([]);
  // No API server answers at that address: a prepare says so in the claim's error, nothing more.
  const r = await kubelet.prepare(plugin.pluginSocket, [{ namespace: 'ml', name: 'c', uid: 'u' }]);
  expect(r.claims['u']?.error).toMatch(/reading ResourceClaim ml\/c failed/);
});
