import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryApi, gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import { ArgsReader, SplitArgs } from './args-reader.js';
import { Extender } from './extender.js';
import { registerExtenderRoutes, type ExtenderRouteOptions } from './server.js';
import type { ExtenderArgs } from './wire.js';

const apps: ReturnType<typeof Fastify>[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) await a.close();
});

/** An extender with three GPU nodes and a CPU node, served; and one alike for the reference answers. */
function served(options: ExtenderRouteOptions = {}) {
  const make = (): Extender => {
    const ext = new Extender(new MemoryApi(), { now: () => 0 });
    for (const n of [gpuNode('gpu-a', 8), gpuNode('gpu-b', 1), gpuNode('A', 2), { metadata: { name: 'cpu-1' } }]) ext.view.observeNode(n);
    return ext;
  };
  const ext = make();
  const app = Fastify();
  registerExtenderRoutes(app, ext, options);
  apps.push(app);
  const post = (verb: string, payload: string) => app.inject({ method: 'POST', url: `/gpushare-scheduler/${verb}`, headers: { 'content-type': 'application/json' }, payload });
  return { ext, reference: make(), post };
}

const pod = gpuPod('p', { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '20000' });
/** The body as the kube-scheduler's Go encoder writes it. */
const goBody = (names: readonly string[] | null, p: unknown = pod): string => JSON.stringify({ Pod: p, Nodes: null, NodeNames: names });

describe('the routes read bodies as bytes and answer what the parsed object would get', () => {
  it.each([
    ['every node', ['gpu-a', 'gpu-b', 'A', 'cpu-1']],
    ['unknown names', ['gpu-a', 'nowhere', 'gpu-b', 'also-gone']],
    ['duplicates', ['gpu-a', 'gpu-b', 'gpu-a', 'cpu-1', 'gpu-a']],
    ['no names', []],
  ])('%s: filter and prioritize as Extender.filter / prioritize answer', async (_, names) => {
    const { post, reference } = served();
    for (let round = 0; round < 2; round++) {
      // Twice: the second time the list and the pod come from the remembered bytes.
      const f = await post('filter', goBody(names));
      expect(f.statusCode).toBe(200);
      const expected = reference.filter({ Pod: pod, NodeNames: [...names] } as ExtenderArgs);
      expect(f.json()).toEqual(JSON.parse(JSON.stringify(expected)));
      const passed = /,"NodeNames":(\[[^\]]*\]),"FailedNodes"/.exec(f.body)?.[1] ?? 'null';
      const p = await post('prioritize', `{"Pod":${JSON.stringify(pod)},"Nodes":null,"NodeNames":${passed}}`);
      expect(p.statusCode).toBe(200);
      expect(p.json()).toEqual(reference.prioritize({ Pod: pod, NodeNames: expected.NodeNames } as ExtenderArgs));
    }
  });

  it('escapes in names (\\u0041 is A): the same node as written plainly', async () => {
    const { post, reference } = served();
    const escaped = (await post('filter', `{"Pod":${JSON.stringify(pod)},"Nodes":null,"NodeNames":["\\u0041","gpu-\\u0061","x\\"y"]}`)).json<unknown>();
    expect(escaped).toEqual(JSON.parse(JSON.stringify(reference.filter({ Pod: pod, NodeNames: ['A', 'gpu-a', 'x"y'] } as ExtenderArgs))));
    expect((await post('filter', goBody(['A', 'gpu-a', 'x"y']))).json<unknown>()).toEqual(escaped);
  });

  it('a Nodes body (not nodeCacheCapable): parsed whole, the passed nodes as objects', async () => {
    const { post, reference } = served();
    const items = ['gpu-a', 'gpu-b', 'cpu-1'].map((name) => ({ metadata: { name, labels: { x: ',"NodeNames":[' } } }));
    const res = await post('filter', JSON.stringify({ Pod: pod, Nodes: { items }, NodeNames: null }));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(JSON.parse(JSON.stringify(reference.filter({ Pod: pod, Nodes: { items }, NodeNames: null } as unknown as ExtenderArgs))));
  });

  it('a NodeNames deeper in the body than its last member: parsed whole, not split wrong', async () => {
    const { post, reference } = served();
    const odd = { ...pod, spec: { ...pod.spec, extra: { NodeNames: ['cpu-1'] } } };
    const text = `{"Pod":${JSON.stringify(odd).slice(0, -1)},"tail":{"a":1,"NodeNames":["gpu-a"]}},"NodeNames":["gpu-a","gpu-b"],"More":[1]}`;
    const res = await post('filter', text);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(JSON.parse(JSON.stringify(reference.filter(JSON.parse(text) as ExtenderArgs))));
  });

  it.each([
    ['truncated', (b: string) => b.slice(0, -1)],
    ['a list cut short', (b: string) => b.replace('"gpu-b"]', '"gpu-b"')],
    ['a pod cut short', (b: string) => b.replace(',"Nodes":null', ',"Nodes":')],
    ['garbage after the list', (b: string) => `${b.slice(0, -1)}x}`],
    ['a list that is not JSON', (b: string) => b.replace('["gpu-a"', '[gpu-a"')],
    ['not an object', () => '[1,"NodeNames":["a"]]'],
    ['empty', () => ''],
  ])('bad JSON (%s): 400 saying so, and nothing changed', async (_, spoil) => {
    const { ext, post, reference } = served();
    const before = ext.view.generation;
    const body = goBody(['gpu-a', 'gpu-b']);
    // The good body first: its list and pod are remembered; the spoiled one must not use them wrongly.
    expect((await post('filter', body)).statusCode).toBe(200);
    const res = await post('filter', spoil(body));
    expect(res.statusCode).toBe(400);
    expect(res.json<{ message: string }>().message).toMatch(/gpushare: the body is not JSON/);
    expect(ext.view.generation).toBe(before);
    expect((await post('filter', body)).json()).toEqual(JSON.parse(JSON.stringify(reference.filter({ Pod: pod, NodeNames: ['gpu-a', 'gpu-b'] } as ExtenderArgs))));
  });

  it.each([
    ['a name that is not a string', goBody(['gpu-a']).replace('["gpu-a"]', '["gpu-a",7]'), /NodeNames\.1/],
    ['NodeNames an object', goBody(['gpu-a']).replace('["gpu-a"]', '[{"a":1}]'), /NodeNames\.0/],
    ['no Pod', '{"Nodes":null,"NodeNames":["gpu-a"]}', /Pod/],
    ['a pod without containers', goBody(['gpu-a'], { metadata: {}, spec: { containers: [] } }), /Pod\.spec\.containers/],
  ])('JSON that is not ExtenderArgs (%s): 400 with the reason in Error', async (_, text, why) => {
    const { post } = served();
    const res = await post('filter', text);
    expect(res.statusCode).toBe(400);
    expect(res.json<{ Error: string }>().Error).toMatch(why);
    // The same list again, now all strings, is taken.
    expect((await post('filter', goBody(['gpu-a']))).statusCode).toBe(200);
  });

  it('a body over the limit: 413, the extender not asked', async () => {
    const { ext, post } = served({ bodyLimit: 4096 });
    const before = ext.view.generation;
    const names = Array.from({ length: 1000 }, (_, k) => `node-${k}`);
    const res = await post('filter', goBody(names));
    expect(res.statusCode).toBe(413);
    expect(ext.view.generation).toBe(before);
    expect((await post('filter', goBody(['gpu-a']))).statusCode).toBe(200);
  });
});

describe('ArgsReader: a list or a pod whose bytes came before is not parsed again', () => {
  it('the same bytes give the same frozen list, and filter`s answer bytes its list', () => {
    const reader = new ArgsReader();
    const a = reader.read(Buffer.from(goBody(['n1', 'n2'])));
    const b = reader.read(Buffer.from(goBody(['n1', 'n2'], { ...pod, metadata: { name: 'other' } })));
    expect(a).toBeInstanceOf(SplitArgs);
    expect(b).toBeInstanceOf(SplitArgs);
    const [x, y] = [a as SplitArgs, b as SplitArgs];
    expect(x.names).toBe(y.names);
    expect(Object.isFrozen(x.names)).toBe(true);
    expect(x.rest).not.toBe(y.rest);
    expect((reader.read(Buffer.from(goBody(['n1', 'n2']))) as SplitArgs).rest).toBe(x.rest);
    const answer = Object.freeze(['n2']);
    reader.rememberAnswer(Buffer.from('["n2"]'), answer);
    expect((reader.read(Buffer.from(goBody(['n2']))) as SplitArgs).names).toBe(answer);
    // Other bytes for the same names (an escape): parsed, equal, not the remembered object.
    const escaped = reader.read(Buffer.from(goBody(['n2']).replace('"n2"]', '"\\u006e2"]'))) as SplitArgs;
    expect(escaped.names).toEqual(['n2']);
    expect(escaped.names).not.toBe(answer);
  });

  it('a remembered list is never handed out for other bytes of the same length', () => {
    const reader = new ArgsReader();
    const a = reader.read(Buffer.from(goBody(['n1', 'n2']))) as SplitArgs;
    const b = reader.read(Buffer.from(goBody(['n1', 'n3']))) as SplitArgs;
    expect(b.names).toEqual(['n1', 'n3']);
    expect(a.names).toEqual(['n1', 'n2']);
  });
});
