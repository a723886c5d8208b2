/**
 * The device plugin, played by a fake kubelet over real Unix sockets with a real gRPC client (the
 * project's .proto) and a fake API server with watch semantics: registration and re-registration
 * when the kubelet restarts, ListAndWatch with health, GetPreferredAllocation, Allocate honouring
 * the extender's decision whatever replicas the kubelet picks, PreStartContainer, restarts of the
 * plugin, bad input. Every pod the plugin patches is checked with client-node's typed serializer.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { apiClients } from '../../src/k8s/api/client.js';
import { decodeAllocateResponse } from '../../src/k8s/cdi/apply-allocate.js';
import { readSlotFile } from '../../src/k8s/cdi/slot-file.js';
import { StaticInventory } from '../../src/k8s/dra/kubelet-inventory.js';
import { decodeAllocated } from '../../src/k8s/deviceplugin/allocated.js';
import { startDevicePlugin, type DevicePlugin, type DevicePluginOptions, type GpuHealthEvent, type PluginLog } from '../../src/k8s/deviceplugin/plugin.js';
import { GPUSHARE_ANNOTATION } from '../../src/k8s/hami/names.js';
import { gpu } from './dra-kubelet-fixtures.js';
import { startFakeApiServer, until, type FakeApiServer } from './fake-apiserver.js';
import { FakeKubelet, podJson, type PodFixture } from './device-plugin-fixtures.js';
import { checkWire } from './typed.js';

const GPUS = [gpu(0, { numaNode: 0 }), gpu(1, { numaNode: 1 }), gpu(2, { numaNode: null })];
const [G0, G1, G2] = GPUS.map((g) => g.uuid) as [string, string, string];

let root: string;
let api: FakeApiServer;
let kubelet: FakeKubelet;
let inventory: StaticInventory;
let plugin: DevicePlugin | null;
const log: PluginLog = { info: () => undefined, error: () => undefined };

function options(over: Partial<DevicePluginOptions> = {}): DevicePluginOptions {
  return {
    nodeName: 'node-a', gpus: GPUS, health: inventory, api: apiClients(api.kubeConfig()), library: join(root, 'libgpushare.so'),
    deviceDir: join(root, 'device-plugins'), stateDir: join(root, 'state'), split: 4, admissionWaitMs: 3000, pollMs: 200, log,
    deviceNode: (g) => `/dev/nvidia${g.index + 4}`,
    ...over,
  };
}

async function start(over: Partial<DevicePluginOptions> = {}): Promise<DevicePlugin> {
  plugin = await startDevicePlugin(options(over));
  return plugin;
}

function seed(f: PodFixture): void {
  api.seed('pods', podJson(f));
}

/** A one-container pod decided on `gpuUuid`. */
function onePod(n: number, gpuUuid: string, over: Partial<PodFixture> = {}): PodFixture {
  return { name: `p-${n}`, uid: `uid-${n}`, decidedAtMs: 1_796_000_000_000 + n, containers: [{ gpus: 1, memoryMiB: 1024 + n, cores: 20, decided: [gpuUuid] }], ...over };
}

const ids = (uuid: string, ...replicas: number[]): string[] => replicas.map((r) => `${uuid}::${r}`);
const all = (): string[] => GPUS.flatMap((g) => ids(g.uuid, 0, 1, 2, 3));

async function refused(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as ServiceError;
  }
  throw new Error('expected the call to be refused');
}

function allocatedOn(name: string): { index: number; gpus: string[]; deviceIds: string[] }[] {
  const pod = api.object('pods', name, 'ml');
  const text = (pod?.metadata['annotations'] as Record<string, string> | undefined)?.[GPUSHARE_ANNOTATION.allocated];
  if (text === undefined) return [];
  const a = decodeAllocated(text);
  if (!a.ok) throw new Error('malformed allocated annotation');
  return a.value.containers;
}

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'gs-dp-'));
  mkdirSync(join(root, 'device-plugins'));
  writeFileSync(join(root, 'libgpushare.so'), 'libgpushare');
  api = await startFakeApiServer();
  inventory = new StaticInventory(GPUS);
  kubelet = new FakeKubelet(join(root, 'device-plugins'));
  await kubelet.start();
  plugin = null;
});

afterEach(async () => {
  await plugin?.stop();
  await kubelet.stop();
  await api.close();
  rmSync(root, { recursive: true, force: true });
});

describe('registration and ListAndWatch', () => {
  it('registers v1beta1 for nvidia.com/gpu on its socket, then lists every GPU split times with NUMA nodes', async () => {
    const p = await start();
    expect(kubelet.registrations).toEqual([{ version: 'v1beta1', endpoint: 'gpushare.sock', resource_name: 'nvidia.com/gpu', options: { pre_start_required: true, get_preferred_allocation_available: true } }]);
    expect(p.registration()).toEqual({ state: 'registered', count: 1 });
    expect(await kubelet.options()).toEqual({ pre_start_required: true, get_preferred_allocation_available: true });
    const list = await until(() => kubelet.latest(), 5000, 'a device list');
    expect(list.map((d) => d.ID)).toEqual(all());
    expect(list.every((d) => d.health === 'Healthy')).toBe(true);
    expect(list.find((d) => d.ID === `${G1}::3`)?.topology).toEqual({ nodes: [{ ID: 1 }] });
    expect(list.find((d) => d.ID === `${G2}::0`)?.topology).toBeNull();
  });

  it('sends a new list when a GPU\'s health changes (inventory source), and again when it recovers', async () => {
    await start();
    await until(() => kubelet.latest(), 5000, 'a device list');
    inventory.set(GPUS.map((g) => (g.uuid === G1 ? { ...g, health: 'lost' as const } : g)));
    const sick = await until(() => (kubelet.lists.length >= 2 ? kubelet.latest() : undefined), 5000, 'a second list');
    expect(sick.filter((d) => d.health === 'Unhealthy').map((d) => d.ID)).toEqual(ids(G1, 0, 1, 2, 3));
    inventory.set(GPUS);
    const well = await until(() => (kubelet.lists.length >= 3 ? kubelet.latest() : undefined), 5000, 'a third list');
    expect(well.every((d) => d.health === 'Healthy')).toBe(true);
  });

  it('takes health from an async stream of changes too', async () => {
    const events: GpuHealthEvent[] = [];
    let wake: () => void = () => undefined;
    const stream: AsyncIterable<GpuHealthEvent> = {
      [Symbol.asyncIterator]: () => ({
        next: async () => {
          while (events.length === 0) await new Promise<void>((resolve) => { wake = resolve; });
          return { done: false, value: events.shift()! };
        },
        return: async () => ({ done: true, value: undefined }),
      }),
    };
    await start({ health: stream });
    await until(() => kubelet.latest(), 5000, 'a device list');
    events.push({ uuid: G2, health: 'lost' });
    wake();
    const sick = await until(() => (kubelet.lists.length >= 2 ? kubelet.latest() : undefined), 5000, 'a second list');
    expect(sick.filter((d) => d.health === 'Unhealthy').map((d) => d.ID)).toEqual(ids(G2, 0, 1, 2, 3));
  });

  it('waits for a kubelet that is not there yet, and registers when its socket appears', async () => {
    await kubelet.stop();
    const p = await start();
    expect(p.registration()).toEqual({ state: 'waiting' });
    await kubelet.start();
    await until(() => kubelet.registrations.length === 1, 5000, 'registration');
    await until(() => kubelet.latest(), 5000, 'a device list');
  });

  it('re-registers and serves again when the kubelet restarts and removes the plugin\'s socket', async () => {
    const p = await start();
    seed(onePod(1, G0));
    seed(onePod(2, G1));
    await until(() => kubelet.latest(), 5000, 'a device list');
    await kubelet.allocate(ids(G0, 0));
    await kubelet.restart(async () => {
      await until(() => !existsSync(join(root, 'device-plugins', 'kubelet.sock')), 2000, 'kubelet gone');
    });
    await until(() => existsSync(p.socket), 5000, 'the plugin\'s socket served again');
    await until(() => kubelet.registrations.length === 2, 5000, 're-registration');
    await until(() => kubelet.latest(), 5000, 'a device list after the restart');
    const [second] = await kubelet.allocate(ids(G1, 0));
    expect(second?.envs['GPUSHARE_POD']).toBe('ml/p-2');
    expect(p.registration()).toEqual({ state: 'registered', count: 2 });
  });

  it('serves again when only its socket is removed, and re-registers (the kubelet\'s stream to it is gone)', async () => {
    const p = await start();
    await until(() => kubelet.latest(), 5000, 'a device list');
    rmSync(p.socket);
    await until(() => existsSync(p.socket) && kubelet.registrations.length === 2, 5000, 'served and registered again');
  });
});

describe('GetPreferredAllocation', () => {
  it('steers the kubelet to a replica of the GPU the extender chose for the pod being admitted', async () => {
    seed(onePod(1, G2));
    await start();
    expect(await kubelet.preferred(all(), 1)).toEqual(ids(G2, 0));
    expect(await kubelet.preferred(all().filter((id) => id !== `${G2}::0`), 1)).toEqual(ids(G2, 1));
  });

  it('with no pending pod, spreads: the GPUs with the most free replicas, distinct cards, must-include first', async () => {
    await start();
    const available = [...ids(G0, 0), ...ids(G1, 0, 1, 2), ...ids(G2, 0, 1)];
    expect(await kubelet.preferred(available, 2)).toEqual([`${G1}::0`, `${G2}::0`]);
    expect(await kubelet.preferred(available, 2, [`${G0}::0`])).toEqual([`${G0}::0`, `${G1}::0`]);
  });
});

describe('Allocate', () => {
  it('gives the decision\'s GPU and slice even when the kubelet picked replicas of another GPU, and records it', async () => {
    seed(onePod(1, G1));
    const p = await start();
    const [r] = await kubelet.allocate(ids(G0, 2));
    expect(r?.envs).toMatchObject({
      NVIDIA_VISIBLE_DEVICES: G1, CUDA_VISIBLE_DEVICES: G1, GPUSHARE_MEMORY_LIMIT: String(1025 * 2 ** 20), GPUSHARE_COMPUTE_LIMIT: '20',
      CUDA_DEVICE_MEMORY_LIMIT_0: '1025m', CUDA_DEVICE_SM_LIMIT: '20', CUDA_TASK_PRIORITY: '1', GPUSHARE_PRIORITY: 'normal',
      GPUSHARE_REGION: '/run/gpushare/claim/region', CUDA_DEVICE_MEMORY_SHARED_CACHE: '/run/gpushare/claim/region', GPUSHARE_COMPUTE_DIR: '/run/gpushare/compute', GPUSHARE_POD: 'ml/p-1',
    });
    const state = join(root, 'state');
    expect(r?.mounts).toEqual([
      { container_path: '/usr/local/gpushare/lib/libgpushare.so', host_path: join(state, 'lib', 'libgpushare.so'), read_only: true },
      { container_path: '/etc/ld.so.preload', host_path: join(state, 'ld.so.preload'), read_only: true },
      { container_path: '/run/gpushare/claim', host_path: join(state, 'containers', 'uid-1_0'), read_only: false },
      { container_path: '/run/gpushare/compute', host_path: join(state, 'compute'), read_only: false },
    ]);
    expect(r?.devices.map((d) => `${d.host_path}>${d.container_path}:${d.permissions}`)).toEqual(['/dev/nvidia5>/dev/nvidia5:rw', '/dev/nvidiactl>/dev/nvidiactl:rw', '/dev/nvidia-uvm>/dev/nvidia-uvm:rw', '/dev/nvidia-uvm-tools>/dev/nvidia-uvm-tools:rw']);
    expect(existsSync(join(state, 'containers', 'uid-1_0'))).toBe(true);
    // What the runtime applier (cdi/apply-allocate.ts) reads is what the plugin answers.
    expect(decodeAllocateResponse(r)).toMatchObject({ ok: true, value: { envs: r?.envs, mounts: r?.mounts, devices: r?.devices } });
    expect(p.served().map((e) => [e.key, e.gpus, e.deviceIds])).toEqual([['uid-1#0', [G1], ids(G0, 2)]]);
    await p.settled();
    expect(allocatedOn('p-1')).toMatchObject([{ index: 0, gpus: [G1], deviceIds: ids(G0, 2) }]);
    checkWire(api.object('pods', 'p-1', 'ml'), 'V1Pod');
    const patch = api.writes('pods')[0];
    expect(patch?.verb).toBe('patch');
    expect((patch?.body as { metadata: Record<string, unknown> }).metadata).toMatchObject({ uid: 'uid-1', resourceVersion: expect.any(String) });
    expect(await kubelet.preStart(ids(G0, 2))).toEqual({});
  });

  it('serves a pod\'s containers in order, a two-GPU container on its two GPUs, each once', async () => {
    seed({ name: 'p-2', uid: 'uid-2', containers: [{ gpus: 2, decided: [G2, G0], cores: 50 }, { gpus: 1, decided: [G1] }] });
    const p = await start();
    const [a] = await kubelet.allocate(ids(G1, 0, 1));
    expect(a?.envs['NVIDIA_VISIBLE_DEVICES']).toBe(`${G2},${G0}`);
    expect(a?.envs).toMatchObject({ CUDA_DEVICE_MEMORY_LIMIT_0: '4096m', CUDA_DEVICE_MEMORY_LIMIT_1: '4096m', CUDA_DEVICE_SM_LIMIT: '50' });
    const [b] = await kubelet.allocate(ids(G1, 2));
    expect(b?.envs['NVIDIA_VISIBLE_DEVICES']).toBe(G1);
    expect(p.served().map((e) => e.key)).toEqual(['uid-2#0', 'uid-2#1']);
    await p.settled();
    expect(allocatedOn('p-2').map((c) => c.index)).toEqual([0, 1]);
    checkWire(api.object('pods', 'p-2', 'ml'), 'V1Pod');
  });

  it('admits 50 pods bound to one node one after another, as the kubelet does: none refused, each decision served once', async () => {
    for (let n = 0; n < 50; n++) seed(onePod(n, GPUS[n % 3]!.uuid, { creationTimestamp: '2026-12-06T10:00:00Z' }));
    const p = await start({ split: 20 });
    const used = new Set<string>();
    for (let n = 0; n < 50; n++) {
      const available = GPUS.flatMap((g) => Array.from({ length: 20 }, (_, i) => `${g.uuid}::${i}`)).filter((id) => !used.has(id));
      const preferred = await kubelet.preferred(available, 1);
      expect(preferred[0]?.startsWith(GPUS[n % 3]!.uuid)).toBe(true);
      const [r] = await kubelet.allocate(preferred);
      preferred.forEach((id) => used.add(id));
      expect(r?.envs['GPUSHARE_POD']).toBe(`ml/p-${n}`);
      expect(r?.envs['NVIDIA_VISIBLE_DEVICES']).toBe(GPUS[n % 3]!.uuid);
    }
    expect(new Set(p.served().map((e) => e.podUid)).size).toBe(50);
    await p.settled();
    for (let n = 0; n < 50; n += 7) checkWire(api.object('pods', `p-${n}`, 'ml'), 'V1Pod');
    expect(Array.from({ length: 50 }, (_, n) => allocatedOn(`p-${n}`).length)).toEqual(Array(50).fill(1));
  });

  it('admits a burst of 50 whose decisions reach the watch late, and 50 Allocates at once: none refused, none placed twice', async () => {
    for (let n = 0; n < 50; n++) seed(onePod(n, GPUS[n % 3]!.uuid, { decided: false }));
    const p = await start({ split: 20, admissionWaitMs: 10_000 });
    const calls = Array.from({ length: 50 }, (_, n) => kubelet.allocate([`${GPUS[n % 3]!.uuid}::${Math.floor(n / 3)}`]));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(p.served()).toEqual([]);
    // The extender's decisions land one by one, out of order.
    for (const n of Array.from({ length: 50 }, (_, i) => (i * 17) % 50)) {
      const f = onePod(n, GPUS[n % 3]!.uuid);
      api.mutate('pods', `p-${n}`, (pod) => {
        pod.metadata['annotations'] = (podJson(f)['metadata'] as { annotations: Record<string, string> }).annotations;
      }, 'ml');
      if (n % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const answers = await Promise.all(calls);
    const pods = answers.map(([r]) => r?.envs['GPUSHARE_POD']);
    expect(new Set(pods).size).toBe(50);
    expect(new Set(p.served().map((e) => e.key)).size).toBe(50);
    for (const [r] of answers) {
      const n = Number(r?.envs['GPUSHARE_POD']?.slice('ml/p-'.length));
      expect(r?.envs['NVIDIA_VISIBLE_DEVICES']).toBe(GPUS[n % 3]!.uuid);
    }
    await p.settled();
    expect(Array.from({ length: 50 }, (_, n) => allocatedOn(`p-${n}`).length)).toEqual(Array(50).fill(1));
  }, 30_000);

  it('keeps what it served across a restart of the plugin between Allocate calls (the ledger), and across a lost ledger (the pod annotation)', async () => {
    seed(onePod(1, G0));
    seed(onePod(2, G1));
    seed(onePod(3, G2));
    const first = await start();
    const [a] = await kubelet.allocate(ids(G0, 0));
    expect(a?.envs['GPUSHARE_POD']).toBe('ml/p-1');
    await first.settled();
    await first.stop();
    await start();
    await until(() => kubelet.registrations.length === 2, 5000, 're-registration');
    const [b] = await kubelet.allocate(ids(G0, 1));
    expect(b?.envs['GPUSHARE_POD']).toBe('ml/p-2');
    await plugin?.settled();
    await plugin?.stop();
    rmSync(join(root, 'state', 'ledger.json'));
    await start();
    await until(() => kubelet.registrations.length === 3, 5000, 're-registration');
    const [c] = await kubelet.allocate(ids(G0, 2));
    expect(c?.envs['GPUSHARE_POD']).toBe('ml/p-3');
  });

  it('writes the annotated marks at stop, and after a crash that lost them records nothing again (the pod has it)', async () => {
    seed(onePod(1, G0));
    const first = await start();
    await kubelet.allocate(ids(G0, 0));
    await first.settled();
    expect(allocatedOn('p-1')).toHaveLength(1);
    const ledgerPath = join(root, 'state', 'ledger.json');
    // The mark waits in memory (no second write of the ledger after each patch): the file as a
    // crash right now would leave it says the entry is not on its pod yet.
    const crashed = readFileSync(ledgerPath);
    expect((JSON.parse((readSlotFile(ledgerPath) as { text: string }).text) as { entries: { annotated: boolean }[] }).entries.map((e) => e.annotated)).toEqual([false]);
    await first.stop();
    expect((JSON.parse((readSlotFile(ledgerPath) as { text: string }).text) as { entries: { annotated: boolean }[] }).entries.map((e) => e.annotated)).toEqual([true]);
    writeFileSync(ledgerPath, crashed);
    const patches = api.writes('pods').length;
    const again = await start();
    await again.settled();
    expect(api.writes('pods')).toHaveLength(patches);
    expect(allocatedOn('p-1')).toHaveLength(1);
    expect(again.served().map((e) => e.annotated)).toEqual([true]);
  });

  it('refuses a second plugin on the same state while the first runs (the ledger\'s lock), leaving the first serving', async () => {
    seed(onePod(1, G0));
    const first = await start();
    await expect(startDevicePlugin(options())).rejects.toThrow(/ledger\.json is being written by process \d+ .*one writer per file/);
    const [a] = await kubelet.allocate(ids(G0, 0));
    expect(a?.envs['GPUSHARE_POD']).toBe('ml/p-1');
    await first.settled();
  });

  it('makes a pending container\'s directory and answer when the watch sees its pod; the answer is the one made at call time', async () => {
    seed({ name: 'p-1', uid: 'uid-1', containers: [{ gpus: 2, decided: [G2, G0], cores: 50, memoryMiB: 3000 }, { gpus: 1, decided: [G1] }] });
    const ahead = await start({ stateDir: join(root, 'ahead') });
    // Made before any call: both containers' directories.
    await until(() => existsSync(join(root, 'ahead', 'containers', 'uid-1_1')), 5000, 'the directories made ahead');
    expect(readdirSync(join(root, 'ahead', 'containers')).sort()).toEqual(['uid-1_0', 'uid-1_1']);
    const first = [...await kubelet.allocate(ids(G1, 0, 1)), ...await kubelet.allocate(ids(G1, 2))];
    await ahead.stop();
    // The same pod to a plugin that makes both at call time (the behaviour before session 26).
    api.mutate('pods', 'p-1', (pod) => {
      delete (pod.metadata['annotations'] as Record<string, string>)[GPUSHARE_ANNOTATION.allocated];
    }, 'ml');
    const atCall = await start({ stateDir: join(root, 'at-call'), prepareAhead: false });
    await until(() => kubelet.registrations.length === 2, 5000, 're-registration');
    expect(readdirSync(join(root, 'at-call', 'containers'))).toEqual([]);
    const second = [...await kubelet.allocate(ids(G1, 0, 1)), ...await kubelet.allocate(ids(G1, 2))];
    expect(second.map((r) => r?.envs['NVIDIA_VISIBLE_DEVICES'])).toEqual([`${G2},${G0}`, G1]);
    expect(JSON.parse(JSON.stringify(first).replaceAll(join(root, 'ahead'), join(root, 'at-call')))).toEqual(second);
    expect(atCall.served().map((e) => e.key)).toEqual(['uid-1#0', 'uid-1#1']);
  });

  it('serves the decision the pod has when Allocate comes, not the one its answer was made ahead from', async () => {
    seed(onePod(1, G0));
    const p = await start();
    await until(() => existsSync(join(root, 'state', 'containers', 'uid-1_0')), 5000, 'the directory made ahead');
    const redecided = onePod(1, G2, { decidedAtMs: 1_796_000_000_500, containers: [{ gpus: 1, memoryMiB: 3333, cores: 40, decided: [G2] }] });
    api.mutate('pods', 'p-1', (pod) => {
      pod.metadata['annotations'] = (podJson(redecided)['metadata'] as { annotations: Record<string, string> }).annotations;
    }, 'ml');
    await new Promise((resolve) => setTimeout(resolve, 300)); // the change reaches the watch
    const [r] = await kubelet.allocate(ids(G0, 0));
    expect(r?.envs).toMatchObject({ NVIDIA_VISIBLE_DEVICES: G2, GPUSHARE_MEMORY_LIMIT: String(3333 * 2 ** 20), GPUSHARE_COMPUTE_LIMIT: '40' });
    expect(p.served().map((e) => e.gpus)).toEqual([[G2]]);
    expect(readdirSync(join(root, 'state', 'containers'))).toEqual(['uid-1_0']);
  });

  it('forgets a deleted pod\'s containers and removes their directories', async () => {
    seed(onePod(1, G0));
    const p = await start();
    await kubelet.allocate(ids(G0, 0));
    await p.settled();
    api.remove('pods', 'p-1', 'ml');
    await until(() => p.served().length === 0, 5000, 'the ledger to forget the pod');
    expect(readdirSync(join(root, 'state', 'containers'))).toEqual([]);
  });
});

describe('bad input: a clear gRPC error, nothing allocated or leaked', () => {
  // Nothing served and no pod written; the only directories are those made ahead (session 26:
  // prepared.ts) for a pod still waiting with a valid decision, and they go with the pod.
  const nothingServed = async (p: DevicePlugin, madeAhead: string[] = []): Promise<void> => {
    expect(p.served()).toEqual([]);
    expect(readdirSync(join(root, 'state', 'containers'))).toEqual(madeAhead);
    expect(api.writes('pods')).toEqual([]);
    api.remove('pods', 'p-1', 'ml');
    await until(() => readdirSync(join(root, 'state', 'containers')).length === 0, 5000, 'the directories made ahead to go with the pod');
  };

  it.each([
    ['an ID of no GPU here', ['GPU-ffffffff-0000-0000-0000-000000000000::0'], /GPU-ffffffff.*is not a device this plugin advertises/],
    ['a replica past the split', [`${G0}::4`], /::4.*expected <GPU-UUID>::<0-3>/],
    ['no separator', ['gpu0'], /"gpu0".*is not a device/],
    ['an ID twice', [`${G0}::0`, `${G0}::0`], /named twice/],
  ])('unknown device IDs (%s)', async (_what, devices, message) => {
    seed(onePod(1, G0));
    const p = await start();
    const e = await refused(kubelet.allocate(devices));
    expect(e.code).toBe(status.INVALID_ARGUMENT);
    expect(e.details).toMatch(message);
    await nothingServed(p, ['uid-1_0']);
  });

  it('a count that matches no pending pod: refused after the wait, naming the pods passed over', async () => {
    seed(onePod(1, G0));
    const p = await start({ admissionWaitMs: 300 });
    const e = await refused(kubelet.allocate(ids(G0, 0, 1)));
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/no pod bound to node node-a is waiting for a container of 2 nvidia.com\/gpu.*ml\/p-1: its next container "c0" was given 1 GPU\(s\)/);
    await nothingServed(p, ['uid-1_0']);
  });

  it.each([
    ['not JSON', '{"v":1,', /gpushare.io\/decision.*is not JSON/],
    ['another pod\'s', JSON.stringify({ v: 1, podUid: 'someone-else', node: 'node-a', decidedAtMs: 1, containers: [{ name: 'c0', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: 'GPU-x', index: 0, memoryBytes: 1, coresPercent: 0, computeMilli: 0 }] }] }), /decision is for pod uid someone-else/],
    ['another node\'s', JSON.stringify({ v: 1, podUid: 'uid-1', node: 'node-b', decidedAtMs: 1, containers: [{ name: 'c0', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: G0, index: 0, memoryBytes: 1, coresPercent: 0, computeMilli: 0 }] }] }), /decision is for node node-b/],
  ])('a malformed decision (%s)', async (_what, text, message) => {
    api.seed('pods', { ...podJson(onePod(1, G0)), metadata: { name: 'p-1', namespace: 'ml', uid: 'uid-1', annotations: { [GPUSHARE_ANNOTATION.decision]: text } } });
    const p = await start({ admissionWaitMs: 200 });
    const e = await refused(kubelet.allocate(ids(G0, 0)));
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toMatch(message);
    await nothingServed(p);
  });

  it('a decision naming a GPU this node does not have', async () => {
    seed(onePod(1, 'GPU-99999999-0000-0000-0000-000000000000'));
    const p = await start();
    const e = await refused(kubelet.allocate(ids(G0, 0)));
    expect(e.details).toMatch(/GPU-99999999.*which node node-a does not have/);
    await nothingServed(p);
  });

  it('PreStartContainer for devices no Allocate served', async () => {
    await start();
    const e = await refused(kubelet.preStart(ids(G1, 3)));
    expect(e.code).toBe(status.FAILED_PRECONDITION);
    expect(e.details).toMatch(/Allocate must come first/);
  });

  it('a split out of range is refused at start', async () => {
    await expect(startDevicePlugin(options({ split: 0 }))).rejects.toThrow(/split.*whole number of replicas per GPU from 1 to 1024/);
  });
});
