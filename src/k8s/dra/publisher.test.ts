import type { V1ResourceSlice } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Gpu } from '../../domain/gpu.js';
import { startFakeApiServer, until, type FakeApiServer } from '../../../test/k8s/fake-apiserver.js';
import { DRIVER_FACTS, h100 } from '../../../test/k8s/gpus.js';
import { checkWire } from '../../../test/k8s/typed.js';
import { apiClients } from '../api/client.js';
import { DRIVER_NAME } from './names.js';
import { SlicePublisher, type PublisherLog } from './publisher.js';
import { buildResourceSlices, layoutConfig, sliceName, type LayoutConfig } from './slices.js';

const NODE = 'gpu-node-1';
let api: FakeApiServer;
let publisher: SlicePublisher | null = null;
let lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];

const log: PublisherLog = {
  info: (fields, message) => lines.push({ level: 'info', fields, message }),
  warn: (fields, message) => lines.push({ level: 'warn', fields, message }),
};

function gpus(n: number, over: (i: number) => Partial<Gpu> = () => ({})): Gpu[] {
  return Array.from({ length: n }, (_, i) => h100(i, over(i)));
}

function start(layout: LayoutConfig = layoutConfig({ layout: 'fixed' }), inventory = gpus(8)): SlicePublisher {
  publisher = new SlicePublisher({ api: apiClients(api.kubeConfig()), nodeName: NODE, nodeUid: 'node-uid-1', layout, inventory: { gpus: inventory, driver: DRIVER_FACTS }, log, backoff: { initialMs: 5, maxMs: 50 } });
  return publisher;
}

function mine(): V1ResourceSlice[] {
  return api.objects('resourceslices').filter((s) => (s.spec as { nodeName?: string }).nodeName === NODE) as unknown as V1ResourceSlice[];
}

function generations(): number[] {
  return mine().map((s) => s.spec.pool.generation);
}

function events(name: string): number {
  return lines.filter((l) => l.fields.event === name).length;
}

beforeEach(async () => {
  api = await startFakeApiServer();
  lines = [];
});
afterEach(async () => {
  await publisher?.stop();
  publisher = null;
  await api.close();
});

describe('SlicePublisher', () => {
  it('creates the node\'s slices, each a typed ResourceSlice owned by the Node, and watches them', async () => {
    await start().start();
    const creates = api.writes('resourceslices');
    expect(creates.map((w) => [w.verb, w.status])).toEqual([['create', 201], ['create', 201], ['create', 201]]);
    for (const write of creates) checkWire(write.body, 'V1ResourceSlice');
    expect(mine().map((s) => s.metadata?.name)).toEqual([0, 1, 2].map((i) => sliceName(NODE, i)));
    expect(generations()).toEqual([1, 1, 1]);
    expect(mine()[0]!.metadata?.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: NODE, uid: 'node-uid-1', controller: true }]);
    expect(events('dra.slice.created')).toBe(3);
    await until(() => api.openWatches('resourceslices') === 1, 5000, 'the watch');
    expect(api.requests.find((r) => r.verb === 'watch')?.query.fieldSelector).toBe(`spec.nodeName=${NODE},spec.driver=${DRIVER_NAME}`);
  });

  it.each(['consumable', 'fixed'])('writes nothing when the server already has what the node has (an agent restart, %s)', async (layout) => {
    await start(layoutConfig({ layout })).start();
    await publisher!.stop();
    const before = api.writes().length;
    await start(layoutConfig({ layout })).start();
    expect(api.writes().length).toBe(before);
    expect(new Set(generations())).toEqual(new Set([1]));
  });

  it('replaces another layout\'s slices: updates at the next generation, then deletes the stale one', async () => {
    await start().start();
    await publisher!.stop();
    api.requests.length = 0;
    await start(layoutConfig({ layout: 'consumable' })).start();
    expect(api.writes('resourceslices').map((w) => [w.verb, w.name])).toEqual([['update', sliceName(NODE, 0)], ['delete', sliceName(NODE, 1)], ['delete', sliceName(NODE, 2)]]);
    expect(generations()).toEqual([2]);
    expect(mine()[0]!.spec.devices!.every((d) => d.allowMultipleAllocations === true)).toBe(true);
  });

  it('leaves other nodes\' and other drivers\' slices alone', async () => {
    const other = buildResourceSlices({ nodeName: 'other-node', inventory: { gpus: gpus(1), driver: DRIVER_FACTS }, layout: layoutConfig({ layout: 'consumable' }), generation: 3 })[0]!;
    api.seed('resourceslices', other);
    api.seed('resourceslices', { ...other, metadata: { name: 'theirs' }, spec: { ...other.spec, driver: 'gpu.nvidia.com', nodeName: NODE } });
    await start().start();
    expect(api.object('resourceslices', other.metadata!.name!)?.metadata.resourceVersion).toBe('2');
    expect(api.object('resourceslices', 'theirs')).toBeDefined();
    expect(api.writes().every((w) => w.verb === 'create')).toBe(true);
  });

  it('reads again after a 409 on update and converges', async () => {
    await start().start();
    await publisher!.stop();
    api.failNext({ verb: 'update', resource: 'resourceslices' }, { code: 409 });
    await start(layoutConfig({ layout: 'fixed' }), gpus(7)).start();
    expect(api.writes('resourceslices').filter((w) => w.status === 409)).toHaveLength(1);
    expect(events('dra.slices.retry')).toBe(1);
    expect(lines.find((l) => l.fields.event === 'dra.slices.retry')?.fields).toMatchObject({ code: 409, step: `update ${sliceName(NODE, 0)}` });
    expect(generations()).toEqual([2, 2, 2]);
    expect(mine().flatMap((s) => s.spec.devices ?? [])).toHaveLength(7 * 15);
  });

  it('tries again after a 503 and a 429', async () => {
    api.failNext({ verb: 'create', resource: 'resourceslices' }, { code: 503 });
    api.failNext({ verb: 'list', resource: 'resourceslices' }, { code: 429 });
    await start().start();
    expect(mine()).toHaveLength(3);
    expect(events('dra.slices.retry')).toBe(2);
  });

  it('recreates a slice someone else deleted, at the next generation', async () => {
    await start().start();
    await until(() => api.openWatches('resourceslices') === 1, 5000, 'the watch');
    api.remove('resourceslices', sliceName(NODE, 1));
    await until(() => mine().length === 3 && generations().every((g) => g === 2), 5000, 'the slice back');
    expect(events('dra.slice.external')).toBeGreaterThanOrEqual(1);
    expect(lines.find((l) => l.fields.event === 'dra.slice.external')?.fields).toMatchObject({ type: 'DELETED', slice: sliceName(NODE, 1) });
  });

  it('restores a slice someone else changed', async () => {
    await start().start();
    await until(() => api.openWatches('resourceslices') === 1, 5000, 'the watch');
    api.mutate('resourceslices', sliceName(NODE, 1), (o) => { (o.spec as { devices: unknown[] }).devices = []; });
    await until(() => mine()[1]!.spec.devices!.length === 60 && generations().every((g) => g === 2), 5000, 'the slice restored');
  });

  it('watches again after a dropped watch, and still sees deletes', async () => {
    await start().start();
    await until(() => api.openWatches('resourceslices') === 1, 5000, 'the watch');
    api.dropWatches();
    await until(() => events('dra.watch.closed') === 1 && api.openWatches('resourceslices') === 1, 5000, 'a new watch');
    api.remove('resourceslices', sliceName(NODE, 0));
    await until(() => mine().length === 3, 5000, 'the slice back');
  });

  it('reads again after a 410 Expired watch', async () => {
    api.failNext({ verb: 'watch', resource: 'resourceslices' }, { code: 410 });
    await start().start();
    await until(() => events('dra.watch.expired') === 1 && api.openWatches('resourceslices') === 1, 5000, 'a new watch');
    expect(api.requests.filter((r) => r.verb === 'list')).toHaveLength(2);
    api.remove('resourceslices', sliceName(NODE, 1));
    await until(() => mine().length === 3, 5000, 'the slice back');
  });

  it('takes an unhealthy GPU\'s devices out, and puts them back when it recovers', async () => {
    await start(layoutConfig({ layout: 'consumable' })).start();
    publisher!.setInventory({ gpus: gpus(8, (i) => (i === 3 ? { health: 'lost' } : {})), driver: DRIVER_FACTS });
    await publisher!.settled();
    expect(mine()[0]!.spec.devices!.map((d) => d.name)).not.toContain('gpu-3');
    expect(generations()).toEqual([2]);
    publisher!.setInventory({ gpus: gpus(8), driver: DRIVER_FACTS });
    await publisher!.settled();
    expect(mine()[0]!.spec.devices!.map((d) => d.name)).toContain('gpu-3');
    expect(generations()).toEqual([3]);
    expect(events('dra.inventory')).toBe(2);
  });

  it('refuses a bad inventory and changes nothing', async () => {
    await start().start();
    const before = api.writes().length;
    expect(() => publisher!.setInventory({ gpus: [h100(0), h100(1, { uuid: h100(0).uuid })], driver: DRIVER_FACTS })).toThrow(/lists UUID .* twice/);
    await publisher!.settled();
    expect(api.writes().length).toBe(before);
    expect(generations()).toEqual([1, 1, 1]);
  });

  it('deletes all its slices when the node has no healthy GPU left', async () => {
    await start().start();
    publisher!.setInventory({ gpus: gpus(8, () => ({ health: 'lost' })), driver: DRIVER_FACTS });
    await publisher!.settled();
    expect(mine()).toEqual([]);
    expect(events('dra.slice.deleted')).toBe(3);
  });

  it('closes its watch and timers on stop', async () => {
    api.failNext({ verb: 'list', resource: 'resourceslices' }, { code: 500 }, 1);
    await start().start();
    await until(() => api.openWatches('resourceslices') === 1, 5000, 'the watch');
    await publisher!.stop();
    await until(() => api.openWatches('resourceslices') === 0, 5000, 'the watch to close');
    const before = api.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(api.requests.length).toBe(before);
  });
});
