/**
 * The DRA kubelet plugin, played by a fake kubelet over the plugin's real Unix sockets with a
 * real gRPC client (the project's .proto files): registration, prepare/unprepare, idempotence,
 * restarts (also mid-prepare), bad input, the health stream.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir, uptime } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Gpu } from '../../src/domain/gpu.js';
import { currentBootId, writeCheckpoint } from '../../src/k8s/dra/kubelet-checkpoint.js';
import { readSlotFile } from '../../src/k8s/cdi/slot-file.js';
import type { ClaimSource } from '../../src/k8s/dra/kubelet-claims.js';
import { StaticInventory } from '../../src/k8s/dra/kubelet-inventory.js';
import { buildResourceSlices, layoutConfig } from '../../src/k8s/dra/slices.js';
import { startDraKubeletPlugin, type DraKubeletPlugin, type DraKubeletPluginOptions, type PluginLog } from '../../src/k8s/dra/kubelet-plugin.js';
import { DRIVER_FACTS, h100 } from './gpus.js';
import { claimJson, FakeKubelet, GIB, gpu, validConfig, type ClaimFixture, type WireHealth } from './dra-kubelet-fixtures.js';
import { until } from './fake-apiserver.js';

/** Claims by namespace/name, as the API server would return them; reads are counted. */
class FixtureClaims implements ClaimSource {
  readonly claims = new Map<string, Record<string, unknown>>();
  reads = 0;
  add(f: ClaimFixture): { namespace: string; name: string; uid: string } {
    const ref = { namespace: f.namespace ?? 'ml', name: f.name ?? `claim-${f.uid}`, uid: f.uid };
    this.claims.set(`${ref.namespace}/${ref.name}`, claimJson({ ...f, name: ref.name, namespace: ref.namespace }));
    return ref;
  }
  async read(namespace: string, name: string): Promise<unknown> {
    this.reads++;
    const c = this.claims.get(`${namespace}/${name}`);
    if (c === undefined) throw new Error(`HTTP-Code: 404 resourceclaims.resource.k8s.io "${name}" not found`);
    return c;
  }
}

let root: string;
let claims: FixtureClaims;
let inventory: StaticInventory;
let kubelet: FakeKubelet;
let plugin: DraKubeletPlugin | null;
let logged: { level: string; message: string; fields?: Record<string, unknown> }[];

const log: PluginLog = {
  info: (message, fields) => logged.push({ level: 'info', message, fields }),
  error: (message, fields) => logged.push({ level: 'error', message, fields }),
};

function options(over: Partial<DraKubeletPluginOptions> = {}): DraKubeletPluginOptions {
  return {
    poolName: 'node-a', claims, inventory, library: join(root, 'libgpushare.so'),
    registryDir: join(root, 'registry'), pluginDir: join(root, 'plugins'), cdiDir: join(root, 'cdi'), log, now: () => 1_765_000_000_000,
    ...over,
  };
}

async function start(over: Partial<DraKubeletPluginOptions> = {}): Promise<DraKubeletPlugin> {
  plugin = await startDraKubeletPlugin(options(over));
  return plugin;
}

async function restart(): Promise<DraKubeletPlugin> {
  await plugin?.close();
  return start();
}

const cdiFiles = (): string[] => readdirSync(join(root, 'cdi')).sort();
const specOf = (uid: string): { kind: string; devices: { name: string; containerEdits: { env: string[]; mounts: { hostPath: string; containerPath: string }[] } }[] } =>
  JSON.parse(readFileSync(join(root, 'cdi', `gpushare.io-claim_${uid}.json`), 'utf8'));
const checkpointUids = (p: DraKubeletPlugin): string[] => {
  const path = join(p.stateDir, 'checkpoint.json');
  if (!existsSync(path)) return [];
  // The uids recorded, whatever the boot (the file is in the slotted layout, cdi/slot-file.ts).
  const read = readSlotFile(path);
  if (read.kind === 'absent') return [];
  if (read.kind !== 'slots') throw new Error(`${path}: ${read.kind}`);
  return (JSON.parse(read.text) as { claims: { uid: string }[] }).claims.map((c) => c.uid).sort();
};

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'gs-dra-'));
  writeFileSync(join(root, 'libgpushare.so'), 'not really a library');
  claims = new FixtureClaims();
  inventory = new StaticInventory([gpu(0), gpu(1)]);
  kubelet = new FakeKubelet();
  plugin = null;
  logged = [];
});

afterEach(async () => {
  kubelet.close();
  await plugin?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('registration', () => {
  it('answers GetInfo on <registry>/<driver>-reg.sock with the DRA plugin socket and the services the kubelet looks for', async () => {
    const p = await start();
    expect(p.registrySocket).toBe(join(root, 'registry', 'gpu.gpushare.io-reg.sock'));
    expect(p.pluginSocket).toBe(join(root, 'plugins', 'gpu.gpushare.io', 'dra.sock'));
    const info = await kubelet.getInfo(p.registrySocket);
    expect(info).toEqual({ type: 'DRAPlugin', name: 'gpu.gpushare.io', endpoint: p.pluginSocket, supported_versions: ['v1.DRAPlugin', 'v1.DRAResourceHealth', 'v1alpha1.DRAResourceHealth'] });
    expect(statSync(info.endpoint).isSocket()).toBe(true);
  });

  it('records the kubelet\'s verdict, and reports a refusal as an error', async () => {
    const p = await start();
    expect(p.registration()).toEqual({ state: 'waiting' });
    await kubelet.notify(p.registrySocket, false, 'version check of plugin gpu.gpushare.io failed');
    expect(p.registration()).toEqual({ state: 'refused', error: 'version check of plugin gpu.gpushare.io failed' });
    expect(logged.find((l) => l.level === 'error')?.fields).toMatchObject({ error: 'version check of plugin gpu.gpushare.io failed' });
    await kubelet.notify(p.registrySocket, true);
    expect(p.registration()).toEqual({ state: 'registered' });
  });

  it('a restarted kubelet (new connections) registers the plugin again and finds its claims as they were', async () => {
    const p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    await kubelet.notify(p.registrySocket, true);
    const first = await kubelet.prepare(p.pluginSocket, [ref]);
    kubelet.close();
    const restarted = new FakeKubelet();
    try {
      expect((await restarted.getInfo(p.registrySocket)).endpoint).toBe(p.pluginSocket);
      await restarted.notify(p.registrySocket, true);
      expect(await restarted.prepare(p.pluginSocket, [ref])).toEqual(first);
      expect(claims.reads).toBe(1);
    } finally {
      restarted.close();
    }
  });

  it('replaces stale socket files a previous run left, and removes its sockets when closed', async () => {
    const first = await start();
    const { registrySocket, pluginSocket } = first;
    await first.close();
    plugin = null;
    expect(existsSync(registrySocket)).toBe(false);
    writeFileSync(registrySocket, 'stale');
    writeFileSync(pluginSocket, 'stale');
    const p = await start();
    expect((await kubelet.getInfo(p.registrySocket)).name).toBe('gpu.gpushare.io');
  });
});

describe('NodePrepareResources / NodeUnprepareResources', () => {
  it('prepares a claim: CDI ids in the answer, one spec with the slice, the claim in the checkpoint', async () => {
    const p = await start();
    const ref = claims.add({ uid: 'uid-1', results: [{ device: 'gpu-1', shareID: 'share-7', consumedCapacity: { memory: '8Gi', cores: '30' } }], parameters: validConfig });
    const r = await kubelet.prepare(p.pluginSocket, [ref]);
    expect(r.claims['uid-1']).toEqual({
      error: '',
      // `_share_id` is proto-loader's name for the proto3 `optional`'s presence: share_id was on the wire.
      devices: [{ request_names: ['gpu'], pool_name: 'node-a', device_name: 'gpu-1', cdi_device_ids: ['gpushare.io/claim=uid-1'], share_id: 'share-7', _share_id: 'share_id' }],
    });
    expect(cdiFiles()).toEqual(['gpushare.io-claim_uid-1.json']);
    const spec = specOf('uid-1');
    expect(spec.kind).toBe('gpushare.io/claim');
    expect(spec.devices[0]?.name).toBe('uid-1');
    expect(spec.devices[0]?.containerEdits.env).toEqual(expect.arrayContaining([
      `GPUSHARE_MEMORY_LIMIT=${8 * GIB}`, 'GPUSHARE_COMPUTE_LIMIT=30', 'GPUSHARE_PRIORITY=high', 'GPUSHARE_COMPUTE_POLICY=share',
      `CUDA_VISIBLE_DEVICES=${gpu(1).uuid}`, 'GPUSHARE_REGION=/run/gpushare/claim/region',
    ]));
    const mounts = spec.devices[0]?.containerEdits.mounts ?? [];
    for (const m of mounts) expect(existsSync(m.hostPath)).toBe(true);
    expect(readFileSync(mounts.find((m) => m.containerPath === '/etc/ld.so.preload')?.hostPath ?? '', 'utf8')).toBe('/usr/local/gpushare/lib/libgpushare.so\n');
    expect(readFileSync(mounts.find((m) => m.containerPath.endsWith('libgpushare.so'))?.hostPath ?? '', 'utf8')).toBe('not really a library');
    expect(checkpointUids(p)).toEqual(['uid-1']);
  });

  it('prepare twice gives the same answer and writes nothing new; unprepare twice is fine', async () => {
    const p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    const first = await kubelet.prepare(p.pluginSocket, [ref]);
    expect(first.claims['uid-1']?.devices[0]).not.toHaveProperty('_share_id'); // no shareID in the allocation: none sent
    const spec = statSync(join(root, 'cdi', 'gpushare.io-claim_uid-1.json'));
    const checkpoint = statSync(join(p.stateDir, 'checkpoint.json'));
    const second = await kubelet.prepare(p.pluginSocket, [ref]);
    expect(second).toEqual(first);
    expect(statSync(join(root, 'cdi', 'gpushare.io-claim_uid-1.json'))).toMatchObject({ ino: spec.ino, mtimeMs: spec.mtimeMs });
    expect(statSync(join(p.stateDir, 'checkpoint.json'))).toMatchObject({ ino: checkpoint.ino, mtimeMs: checkpoint.mtimeMs });
    expect(claims.reads).toBe(1);

    expect(await kubelet.unprepare(p.pluginSocket, [ref])).toEqual({ claims: { 'uid-1': { error: '' } } });
    expect(cdiFiles()).toEqual([]);
    expect(existsSync(join(p.stateDir, 'claims', 'uid-1'))).toBe(false);
    expect(checkpointUids(p)).toEqual([]);
    expect(await kubelet.unprepare(p.pluginSocket, [ref])).toEqual({ claims: { 'uid-1': { error: '' } } });
  });

  it('unprepare frees the slice: a claim refused for room fits afterwards', async () => {
    const p = await start();
    const big = claims.add({ uid: 'big', results: [{ device: 'gpu-0', consumedCapacity: { memory: '70Gi', cores: '50' } }] });
    const next = claims.add({ uid: 'next', results: [{ device: 'gpu-0', consumedCapacity: { memory: '20Gi', cores: '10' } }] });
    expect((await kubelet.prepare(p.pluginSocket, [big])).claims['big']?.error).toBe('');
    const refused = (await kubelet.prepare(p.pluginSocket, [next])).claims['next'];
    expect(refused?.devices).toEqual([]);
    expect(refused?.error).toMatch(/gpu 0 \(GPU-0[^)]*\): cannot hold 20 GiB more: 70 GiB of its 80 GiB are prepared for other claims \(10 GiB free\)/);
    expect(cdiFiles()).toEqual(['gpushare.io-claim_big.json']);
    await kubelet.unprepare(p.pluginSocket, [big]);
    expect((await kubelet.prepare(p.pluginSocket, [next])).claims['next']?.error).toBe('');
  });

  it('answers each claim of a batch on its own: bad ones get an error, good ones are prepared', async () => {
    const p = await start();
    const good = claims.add({ uid: 'good' });
    const badMode = claims.add({ uid: 'bad-mode', parameters: { ...validConfig, isolation: 'mps' } });
    const otherDriver = claims.add({ uid: 'other', results: [{ driver: 'gpu.nvidia.com', device: 'gpu-0' }] });
    const otherPool = claims.add({ uid: 'pool', results: [{ pool: 'node-b', device: 'gpu-0' }] });
    const unknown = claims.add({ uid: 'unknown', results: [{ device: 'gpu-9' }] });
    const tooBig = claims.add({ uid: 'big', results: [{ device: 'gpu-0', consumedCapacity: { memory: '81Gi' } }] });
    const missing = { namespace: 'ml', name: 'gone', uid: 'gone' };
    const r = await kubelet.prepare(p.pluginSocket, [good, badMode, otherDriver, otherPool, unknown, tooBig, missing]);
    expect(r.claims['good']?.error).toBe('');
    const errors = Object.fromEntries(Object.entries(r.claims).filter(([uid]) => uid !== 'good').map(([uid, c]) => [uid, c.error]));
    expect(errors).toEqual({
      'bad-mode': expect.stringMatching(/isolation must be one of time-slice, sm-partition \(got "mps"\)/),
      other: expect.stringMatching(/no device allocated by driver gpu\.gpushare\.io \(its devices: gpu\.nvidia\.com\/node-a\/gpu-0\)/),
      pool: expect.stringMatching(/is in pool "node-b"; this node's pool is "node-a"/),
      unknown: expect.stringMatching(/gpu-9: is not a device of this node; its devices are gpu-0, gpu-1/),
      big: expect.stringMatching(/asks for 81 GiB; the device has 80 GiB/),
      gone: expect.stringMatching(/reading ResourceClaim ml\/gone failed: .*not found/),
    });
    for (const uid of Object.keys(errors)) expect(r.claims[uid]?.devices).toEqual([]);
    expect(cdiFiles()).toEqual(['gpushare.io-claim_good.json']);
    expect(readdirSync(join(p.stateDir, 'claims'))).toEqual(['good']);
    expect(checkpointUids(p)).toEqual(['good']);
  });

  it('a checkpoint that cannot be written fails the prepare and leaves nothing behind', async () => {
    const p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    mkdirSync(join(p.stateDir, 'checkpoint.json')); // renaming a file over a directory fails
    const r = (await kubelet.prepare(p.pluginSocket, [ref])).claims['uid-1'];
    expect(r?.error).toMatch(/preparing ResourceClaim ml\/claim-uid-1 failed writing its files: .*checkpoint\.json/);
    expect(r?.devices).toEqual([]);
    expect(cdiFiles()).toEqual([]);
    expect(readdirSync(join(p.stateDir, 'claims'))).toEqual([]);
    expect(p.prepared()).toEqual([]);
  });

  it('refuses a claim reference without a uid, or with one that is no plain name, touching no file', async () => {
    const p = await start();
    const r = await kubelet.prepare(p.pluginSocket, [{ namespace: 'ml', name: 'x', uid: '' }]);
    expect(r.claims['']?.error).toMatch(/must name a claim by namespace, name and uid/);
    const evil = claims.add({ uid: '../../etc' });
    expect((await kubelet.prepare(p.pluginSocket, [evil])).claims['../../etc']?.error).toMatch(/claim uid "\.\.\/\.\.\/etc" is not a Kubernetes uid/);
    expect((await kubelet.unprepare(p.pluginSocket, [evil])).claims['../../etc']?.error).toMatch(/is not a Kubernetes uid/);
    expect(cdiFiles()).toEqual([]);
  });

  it('a prepared claim whose spec was removed behind the plugin\'s back gets it again on the next prepare', async () => {
    const p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    await kubelet.prepare(p.pluginSocket, [ref]);
    rmSync(join(root, 'cdi', 'gpushare.io-claim_uid-1.json'));
    expect((await kubelet.prepare(p.pluginSocket, [ref])).claims['uid-1']?.error).toBe('');
    expect(cdiFiles()).toEqual(['gpushare.io-claim_uid-1.json']);
  });

  it('decides the claims of one call against each other too: the second that does not fit beside the first is refused', async () => {
    const p = await start();
    const a = claims.add({ uid: 'a', results: [{ device: 'gpu-0', consumedCapacity: { memory: '50Gi' } }] });
    const b = claims.add({ uid: 'b', results: [{ device: 'gpu-0', consumedCapacity: { memory: '40Gi' } }] });
    const r = await kubelet.prepare(p.pluginSocket, [a, b]);
    expect(r.claims['a']?.error).toBe('');
    expect(r.claims['b']?.error).toMatch(/cannot hold 40 GiB more: 50 GiB of its 80 GiB are prepared for other claims/);
    expect(checkpointUids(p)).toEqual(['a']);
  });

  it('keeps to each GPU\'s size under concurrent prepares', async () => {
    const p = await start();
    const refs = Array.from({ length: 10 }, (_, i) => claims.add({ uid: `c${i}`, results: [{ device: 'gpu-0', consumedCapacity: { memory: '10Gi', cores: '10' } }] }));
    const answers = await Promise.all(refs.map((ref) => kubelet.prepare(p.pluginSocket, [ref])));
    const ok = answers.filter((a) => Object.values(a.claims)[0]?.error === '');
    expect(ok).toHaveLength(8);
    expect(checkpointUids(p)).toHaveLength(8);
    expect(cdiFiles()).toHaveLength(8);
  });

  it('reads the GPUs\' device nodes once per inventory list, and a prepare after a change sees the new list', async () => {
    const asked: number[] = [];
    inventory.set([gpu(0), gpu(1)]);
    const p = await start({ deviceNode: (g) => { asked.push(g.index); return `/dev/nvidia${g.index + 10}`; } });
    const before = asked.length;
    for (let i = 0; i < 3; i++) {
      const ref = claims.add({ uid: `n${i}`, results: [{ device: 'gpu-1', consumedCapacity: { memory: '1Gi', cores: '1' } }] });
      expect((await kubelet.prepare(p.pluginSocket, [ref])).claims[`n${i}`]?.error).toBe('');
      expect(JSON.stringify(specOf(`n${i}`))).toContain('/dev/nvidia11');
    }
    expect(asked.length - before).toBeLessThanOrEqual(2); // at most the first catalog's two GPUs, not two a prepare
    inventory.set([gpu(0)]);
    const gone = claims.add({ uid: 'gone', results: [{ device: 'gpu-1', consumedCapacity: { memory: '1Gi', cores: '1' } }] });
    expect((await kubelet.prepare(p.pluginSocket, [gone])).claims['gone']?.error).toMatch(/gpu-1: is not a device of this node; its devices are gpu-0/);
  });

  it('prepares a fixed-layout partition the publisher published, with the capacity its slice says', async () => {
    const layout = layoutConfig({ layout: 'fixed' });
    const gpus = [h100(0), h100(1)];
    inventory.set(gpus);
    const published = buildResourceSlices({ nodeName: 'node-a', inventory: { gpus, driver: DRIVER_FACTS }, layout, generation: 1 })
      .flatMap((s) => s.spec.devices ?? []).find((d) => d.name === 'gpu-0-part4-2');
    const memory = published?.capacity?.['memory']?.value;
    expect(memory).toBe('20224Mi'); // 81559 MiB / 4, rounded down to 256 MiB steps
    const p = await start({ layout });
    const ref = claims.add({ uid: 'f1', results: [{ device: 'gpu-0-part4-2' }] });
    expect((await kubelet.prepare(p.pluginSocket, [ref])).claims['f1']?.error).toBe('');
    expect(specOf('f1').devices[0]?.containerEdits.env).toEqual(expect.arrayContaining([`GPUSHARE_MEMORY_LIMIT=${20224 * 2 ** 20}`, 'GPUSHARE_COMPUTE_LIMIT=25']));
    // The old equal-slices names are not this node's devices.
    const old = claims.add({ uid: 'f2', results: [{ device: 'gpu-1-slice-3' }] });
    expect((await kubelet.prepare(p.pluginSocket, [old])).claims['f2']?.error).toMatch(/gpu-1-slice-3: is not a device of this node; its devices are gpu-0, gpu-0-part2-0/);
  });

  it('refuses to start with a layout the node\'s GPUs cannot be published in, saying why', async () => {
    inventory.set([gpu(0, { memoryTotalBytes: 24 * GIB })]);
    await expect(start({ layout: layoutConfig({ layout: 'fixed', partitions: [32], memoryStepBytes: GIB }) })).rejects.toThrow(/GPU 0 \(GPU-0[^)]*\) cut in 32 leaves less than one memory step/);
    expect(existsSync(join(root, 'registry'))).toBe(false);
  });
});

describe('restarts', () => {
  it('refuses a second plugin on the same state while the first runs, touching none of its files; starts once the first is closed', async () => {
    const p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    await kubelet.prepare(p.pluginSocket, [ref]);
    const before = cdiFiles();
    await expect(startDraKubeletPlugin(options())).rejects.toThrow(/checkpoint\.json is being written by process \d+ .*one writer per file/);
    expect(cdiFiles()).toEqual(before);
    expect(p.prepared().map((c) => c.uid)).toEqual(['uid-1']);
    kubelet.close();
    const again = await restart();
    expect(again.prepared().map((c) => c.uid)).toEqual(['uid-1']);
  });

  it('a restarted plugin answers a prepare as before (without reading the claim) and unprepares what it prepared', async () => {
    let p = await start();
    const ref = claims.add({ uid: 'uid-1', results: [{ device: 'gpu-0', consumedCapacity: { memory: '60Gi' } }] });
    const first = await kubelet.prepare(p.pluginSocket, [ref]);
    kubelet.close();
    p = await restart();
    claims.claims.clear();
    expect(await kubelet.prepare(p.pluginSocket, [ref])).toEqual(first);
    expect(p.prepared().map((c) => c.uid)).toEqual(['uid-1']);
    // The ledger came back too: a claim that does not fit beside it is refused.
    const more = claims.add({ uid: 'more', results: [{ device: 'gpu-0', consumedCapacity: { memory: '30Gi' } }] });
    expect((await kubelet.prepare(p.pluginSocket, [more])).claims['more']?.error).toMatch(/cannot hold 30 GiB more/);
    await kubelet.unprepare(p.pluginSocket, [ref]);
    expect(cdiFiles()).toEqual([]);
  });

  it('unprepare moves the claim\'s directory away at once and removes it after the answer; prepared again at once, the claim keeps its new directory', async () => {
    let p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    await kubelet.prepare(p.pluginSocket, [ref]);
    writeFileSync(join(p.stateDir, 'claims', 'uid-1', 'region'), 'the old region');
    expect(await kubelet.unprepare(p.pluginSocket, [ref])).toEqual({ claims: { 'uid-1': { error: '' } } });
    expect(existsSync(join(p.stateDir, 'claims', 'uid-1'))).toBe(false);
    expect((await kubelet.prepare(p.pluginSocket, [ref])).claims['uid-1']?.error).toBe('');
    await until(() => readdirSync(join(p.stateDir, 'gone')).length === 0, 5000, 'the old directory to be removed');
    expect(readdirSync(join(p.stateDir, 'claims', 'uid-1'))).toEqual([]); // the new one, empty: not the old region
    // An agent killed before a removal leaves the directory in gone/: the next start empties it.
    mkdirSync(join(p.stateDir, 'gone', 'uid-0.123.1'));
    writeFileSync(join(p.stateDir, 'gone', 'uid-0.123.1', 'region'), 'left');
    p = await restart();
    expect(readdirSync(join(p.stateDir, 'gone'))).toEqual([]);
    expect(existsSync(join(p.stateDir, 'claims', 'uid-1'))).toBe(true);
  });

  it('killed after the spec, before the checkpoint: the orphan spec and claim directory are removed at start, the retry prepares', async () => {
    let p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    await kubelet.prepare(p.pluginSocket, [ref]);
    await p.close();
    plugin = null;
    writeCheckpoint(join(p.stateDir, 'checkpoint.json'), currentBootId(), []); // as if the checkpoint write never happened
    writeFileSync(join(root, 'cdi', '.gstmp-123-gpushare.io-claim_x.json'), '{"half'); // a write killed half-way
    p = await start();
    expect(cdiFiles()).toEqual([]);
    expect(readdirSync(join(p.stateDir, 'claims'))).toEqual([]);
    expect(p.prepared()).toEqual([]);
    expect((await kubelet.prepare(p.pluginSocket, [ref])).claims['uid-1']?.error).toBe('');
    expect(cdiFiles()).toEqual(['gpushare.io-claim_uid-1.json']);
  });

  it('killed with the checkpoint written but its spec gone (an unprepare half done): the spec is written again at start', async () => {
    let p = await start();
    const ref = claims.add({ uid: 'uid-1' });
    await kubelet.prepare(p.pluginSocket, [ref]);
    const before = readFileSync(join(root, 'cdi', 'gpushare.io-claim_uid-1.json'), 'utf8');
    await p.close();
    plugin = null;
    rmSync(join(root, 'cdi', 'gpushare.io-claim_uid-1.json'));
    rmSync(join(p.stateDir, 'claims', 'uid-1'), { recursive: true });
    p = await start();
    expect(readFileSync(join(root, 'cdi', 'gpushare.io-claim_uid-1.json'), 'utf8')).toBe(before);
    expect(existsSync(join(p.stateDir, 'claims', 'uid-1'))).toBe(true);
    expect(await kubelet.unprepare(p.pluginSocket, [ref])).toEqual({ claims: { 'uid-1': { error: '' } } });
    expect(cdiFiles()).toEqual([]);
  });

  it('sm-partition ranges survive a restart: the next partition goes beside them', async () => {
    let p = await start();
    const sm = { ...validConfig, isolation: 'sm-partition' };
    const refs = ['a', 'b', 'c'].map((uid) => claims.add({ uid, results: [{ device: 'gpu-0', consumedCapacity: { memory: '1Gi', cores: '30' } }], parameters: sm }));
    await kubelet.prepare(p.pluginSocket, refs.slice(0, 2));
    kubelet.close();
    p = await restart();
    expect((await kubelet.prepare(p.pluginSocket, [refs[2] as (typeof refs)[number]])).claims['c']?.error).toBe('');
    const offsets = ['a', 'b', 'c'].map((uid) => specOf(uid).devices[0]?.containerEdits.env.find((e) => e.startsWith('GPUSHARE_SM_OFFSET=')));
    expect(offsets).toEqual(['GPUSHARE_SM_OFFSET=0', 'GPUSHARE_SM_OFFSET=40', 'GPUSHARE_SM_OFFSET=80']);
  });

  it('refuses to start over a corrupt checkpoint, saying which file', async () => {
    const p = await start();
    await p.close();
    plugin = null;
    writeFileSync(join(p.stateDir, 'checkpoint.json'), JSON.stringify({ version: 9, claims: [] }));
    await expect(start()).rejects.toThrow(/checkpoint\.json is not a gpushare DRA checkpoint of version 2/);
    plugin = null;
    writeFileSync(join(p.stateDir, 'checkpoint.json'), '{"version": 2, "bootId": "x", "cla'); // torn, yet written in this boot
    await expect(start()).rejects.toThrow(/checkpoint\.json is not a gpushare DRA checkpoint of version 2: .*JSON/);
    plugin = null;
  });

  it('after a reboot (another boot id) the checkpoint is dropped: its claims hold nothing, their files go, the kubelet\'s prepare decides again', async () => {
    let p = await start({ bootId: 'boot-1' });
    const ref = claims.add({ uid: 'uid-1', results: [{ device: 'gpu-0', consumedCapacity: { memory: '60Gi' } }] });
    expect((await kubelet.prepare(p.pluginSocket, [ref])).claims['uid-1']?.error).toBe('');
    await p.close();
    plugin = null;
    // The same boot: the claim holds its room.
    p = await start({ bootId: 'boot-1' });
    expect(p.prepared().map((c) => c.uid)).toEqual(['uid-1']);
    await p.close();
    plugin = null;
    p = await start({ bootId: 'boot-2' });
    expect(p.prepared()).toEqual([]);
    expect(cdiFiles()).toEqual([]);
    expect(readdirSync(join(p.stateDir, 'claims'))).toEqual([]);
    // The room is free again: 70 GiB fits where the old boot's 60 GiB were.
    const big = claims.add({ uid: 'big', results: [{ device: 'gpu-0', consumedCapacity: { memory: '70Gi' } }] });
    expect((await kubelet.prepare(p.pluginSocket, [big])).claims['big']?.error).toBe('');
    expect(checkpointUids(p)).toEqual(['big']);
  });

  it('a checkpoint torn by a power loss (unreadable, older than this boot) is dropped, not refused', async () => {
    const p = await start();
    await p.close();
    plugin = null;
    const path = join(p.stateDir, 'checkpoint.json');
    writeFileSync(path, '');
    const before = (Date.now() - uptime() * 1000 - 60_000) / 1000;
    utimesSync(path, before, before);
    const again = await start();
    expect(again.prepared()).toEqual([]);
  });
});

describe('the health stream', () => {
  function nextMessage(stream: ReturnType<FakeKubelet['watch']>): Promise<WireHealth> {
    return new Promise((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
  }

  it.each(['healthV1', 'healthV1alpha1'] as const)('%s: every device\'s health, and again when it changes', async (version) => {
    const p = await start();
    const stream = kubelet.watch(p.pluginSocket, version);
    const first = await nextMessage(stream);
    expect(first.devices.map((d) => [d.device.pool_name, d.device.device_name, d.health, d.last_updated_time])).toEqual([
      ['node-a', 'gpu-0', 'HEALTHY', 1_765_000_000], ['node-a', 'gpu-1', 'HEALTHY', 1_765_000_000],
    ]);
    const changed = nextMessage(stream);
    const lost: Gpu = { ...gpu(1), health: 'lost' };
    inventory.set([gpu(0), lost]);
    const second = await changed;
    expect(second.devices.map((d) => [d.device.device_name, d.health])).toEqual([['gpu-0', 'HEALTHY'], ['gpu-1', 'UNHEALTHY']]);
    expect(second.devices[1]?.message).toMatch(/GPU 1 \(GPU-1[^)]*\) is lost/);
    // An update that changes nothing sends nothing: the next message is the next change.
    const third = nextMessage(stream);
    inventory.set([gpu(0), lost]);
    inventory.set([gpu(0), gpu(1)]);
    expect((await third).devices.map((d) => d.health)).toEqual(['HEALTHY', 'HEALTHY']);
    stream.cancel();
  });
});
