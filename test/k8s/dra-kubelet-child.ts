// The DRA kubelet plugin in a process of its own, for tests that kill it (SIGKILL) mid-work:
// `node --import tsx dra-kubelet-child.ts <root>`; prints "ready <plugin socket>" when serving.
// Claims are made up from their names: `c-<n>` is 1 MiB and no cores of gpu-<n mod 2>, uid `u-<n>`:
// small enough that however many claims a fast machine prepares before a kill, they all fit
// (at 1 GiB and 1% a GPU held 80, and the kill test's retries were refused for room).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StaticInventory } from '../../src/k8s/dra/kubelet-inventory.js';
import { startDraKubeletPlugin } from '../../src/k8s/dra/kubelet-plugin.js';
import { claimJson, gpu } from './dra-kubelet-fixtures.js';

const root = process.argv[2] ?? '';
writeFileSync(join(root, 'libgpushare.so'), 'x');
const plugin = await startDraKubeletPlugin({
  poolName: 'node-a',
  claims: {
    read: async (_namespace, name) => {
      const n = Number(name.slice(2));
      return claimJson({ uid: `u-${n}`, name, namespace: 'ml', results: [{ device: `gpu-${n % 2}`, consumedCapacity: { memory: '1Mi', cores: '0' } }] });
    },
  },
  inventory: new StaticInventory([gpu(0), gpu(1)]),
  library: join(root, 'libgpushare.so'),
  registryDir: join(root, 'registry'), pluginDir: join(root, 'plugins'), cdiDir: join(root, 'cdi'),
  log: { info: () => undefined, error: (m) => process.stderr.write(`${m}\n`) },
});
process.stdout.write(`ready ${plugin.pluginSocket}\n`);
