/**
 * Preemption that keeps the work, node side, end to end: the node agent against the fake API
 * server; the victim pod's "container" is fake-train on the fake CUDA driver with the real
 * libgpushare preloaded and attached to the slice's region, checkpointed through koffi on the
 * fake libcuda (as the daemon's suspend tests do). The extender's cluster view is fed the same
 * objects, to show the room freed and held again.
 *
 * suspend request -> processes checkpointed and stopped -> `gpushare.io/suspended` -> the
 * extender's view frees the room -> (agent restarted meanwhile: nothing redone) -> the preemptor
 * binds, no resume while it runs -> it ends -> resumed, annotation gone, the work finishes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../src/gpu/open.js';
import { openCheckpointApi, type CheckpointApi } from '../../src/gpu/checkpoint.js';
import { startNodeAgent, type NodeAgent } from '../../src/k8s/agent/agent.js';
import { resolveAgentConfig } from '../../src/k8s/agent/config.js';
import { Extender } from '../../src/k8s/extender/extender.js';
import { encodeDecision } from '../../src/k8s/hami/decision.js';
import { decodeNodeGpus } from '../../src/k8s/hami/node-gpus.js';
import { decodeSuspension, encodeSuspendRequest } from '../../src/k8s/hami/suspension.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { MemoryApi, gpuPod } from './extender-memory-api.js';
import { recordingLog } from './agent-fixtures.js';
import { startFakeApiServer, until, type FakeApiServer } from './fake-apiserver.js';

const FAKE = `${REPO_ROOT}build/native/fake/libcuda.so.1`;
const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const LIBRARY = `${REPO_ROOT}build/native/libgpushare.so`;
const NODE = 'gpu-node-7';
const MIB = 2 ** 20;

const root = mkdtempSync(join(tmpdir(), 'gs-agent-suspend-'));
const ckptDir = join(root, 'ckpt');
let api: FakeApiServer;
let checkpoint: CheckpointApi;
let agent: NodeAgent | null = null;
const children: ChildProcess[] = [];
const regions = new Map<string, string>();
const { log, lines } = recordingLog();
const { backend } = openBackend({ simulate: '1xH100-80GB' });

beforeAll(async () => {
  expect(existsSync(TRAIN), `${TRAIN} is built by npm run build`).toBe(true);
  mkdirSync(ckptDir, { recursive: true });
  process.env['GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'] = ckptDir;
  const opened = openCheckpointApi(FAKE);
  if (!opened.ok) throw new Error(opened.error.message);
  checkpoint = opened.value;
  api = await startFakeApiServer();
  api.seed('nodes', { metadata: { name: NODE, uid: 'node-uid-7' } });
});

afterAll(async () => {
  await agent?.close();
  for (const c of children) if (c.pid !== undefined) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
  checkpoint.close();
  backend.close();
  delete process.env['GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'];
  await api.close();
  rmSync(root, { recursive: true, force: true });
});

async function startAgent(evictOnFailure = true): Promise<NodeAgent> {
  const file = join(root, 'agent.json');
  writeFileSync(file, JSON.stringify({ dra: { enabled: false }, suspend: { stateFile: join(root, 'state', 'suspensions.json'), evictOnFailure, lockTimeoutMs: 5000 } }));
  const config = resolveAgentConfig({ config: file, nodeName: NODE, healthListen: '127.0.0.1:0', metricsListen: 'off' }, {});
  agent = await startNodeAgent({
    config: { ...config, pollMs: 0 }, backend, kubeConfig: api.kubeConfig(), log, checkpoint: { ok: true, value: checkpoint },
    locators: [{ regionsOf: (pod) => { const r = regions.get(pod.metadata?.uid ?? ''); return r === undefined ? [] : [r]; } }],
  });
  return agent;
}

/** fake-train attached to `region` (as a container's process would be through its CDI edits), in its own process group. */
async function train(region: string, steps: number, stepMs: number): Promise<{ pid: number; out: () => string; done: Promise<number | null> }> {
  mkdirSync(join(region, '..'), { recursive: true });
  const child = spawn(TRAIN, [String(steps), String(stepMs), '8', '4'], {
    detached: true,
    env: { ...process.env, LD_PRELOAD: LIBRARY, GPUSHARE_REGION: region, GPUSHARE_FAKE_CUDA: JSON.stringify({ contextBytes: MIB }), GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckptDir },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  const done = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  await until(() => out.includes('ready'), 10_000, 'fake-train ready');
  return { pid: child.pid ?? -1, out: () => out, done };
}

function procState(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

function gpuUuid(): string {
  const r = decodeNodeGpus(api.object('nodes', NODE)?.metadata.annotations ? (api.object('nodes', NODE)?.metadata.annotations as Record<string, string>)['gpushare.io/node-gpus'] ?? '' : '');
  if (!r.ok || r.value[0] === undefined) throw new Error('no node-gpus annotation');
  return r.value[0].uuid;
}

/** A pod bound to the node whose container holds `mib` of GPU 0 (its extender decision). */
function boundPod(name: string, namespace: string, mib: number, priority: number, createdAt: string): V1Pod {
  const uid = `uid-${name}`;
  const decision = encodeDecision({ v: 1, podUid: uid, node: NODE, decidedAtMs: 1, containers: [{ name: 'main', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: gpuUuid(), index: 0, memoryBytes: mib * MIB, coresPercent: 0, computeMilli: 0 }] }] });
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace, uid, creationTimestamp: new Date(createdAt), annotations: { 'gpushare.io/decision': decision } },
    spec: { nodeName: NODE, priority, containers: [{ name: 'main', image: 'cuda', resources: { limits: { 'nvidia.com/gpumem': String(mib) } } }] },
    status: { phase: 'Running' },
  };
}

function pod(namespace: string, name: string): V1Pod | undefined {
  return api.object('pods', name, namespace) as V1Pod | undefined;
}

function suspension(namespace: string, name: string) {
  const text = pod(namespace, name)?.metadata?.annotations?.['gpushare.io/suspended'];
  if (text === undefined) return null;
  const r = decodeSuspension(text);
  return r.ok ? r.value : null;
}

/** Whether a 60,000 MiB pod fits on the node in the extender's view of the API server's objects now. */
function extenderFits(): boolean {
  const ext = new Extender(new MemoryApi());
  ext.view.observeNode(api.object('nodes', NODE) as V1Node);
  for (const p of api.objects('pods')) ext.view.observePod(p as V1Pod);
  return (ext.filter({ Pod: gpuPod('big', { 'nvidia.com/gpumem': '60000' }) as never, NodeNames: [NODE] }).NodeNames ?? []).includes(NODE);
}

describe('preemption that suspends, on the node', () => {
  it('suspends on request, frees the room, survives an agent restart, and resumes once the preemptor has ended', async () => {
    await startAgent();
    const region = join(root, 'regions', 'batch', 'region');
    api.seed('pods', boundPod('batch', 'batch', 60_000, 0, '2026-12-06T10:00:00Z'));
    regions.set('uid-batch', region);
    const t = await train(region, 150, 30);
    expect(extenderFits()).toBe(false);

    // The extender chose batch as a victim to suspend for `urgent`, nominated here.
    api.seed('pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'urgent', namespace: 'default', uid: 'uid-urgent' }, spec: { priority: 1000, containers: [{ name: 'main', image: 'cuda' }] }, status: { phase: 'Pending', nominatedNodeName: NODE } });
    api.mutate('pods', 'batch', (p) => { (p.metadata.annotations as Record<string, string>)['gpushare.io/suspend-request'] = encodeSuspendRequest({ v: 1, preemptor: 'uid-urgent', node: NODE, atMs: 5 }); }, 'batch');

    const answered = await until(() => suspension('batch', 'batch') ?? undefined, 15_000, 'the suspended annotation');
    expect(answered).toMatchObject({ v: 1, state: 'suspended', preemptor: 'uid-urgent' });
    expect(pod('batch', 'batch')?.metadata?.annotations?.['gpushare.io/suspend-request']).toBeUndefined();
    expect(checkpoint.state(t.pid)).toEqual({ ok: true, value: 'checkpointed' });
    await until(() => procState(t.pid) === 'T', 10_000, 'fake-train stopped');
    expect(extenderFits()).toBe(true); // the preemptor can bind
    const state = JSON.parse(readFileSync(join(root, 'state', 'suspensions.json'), 'utf8')) as { pods: Record<string, { pgids: number[]; step: string }> };
    expect(state.pods['uid-batch']).toEqual({ namespace: 'batch', name: 'batch', pgids: [t.pid], step: 'suspended' });

    // The agent restarts (a DaemonSet update): nothing is redone, nothing resumed.
    await agent?.close();
    const writes = api.writes('pods').length;
    await startAgent();
    await agent?.settled();
    expect(api.writes('pods').slice(writes).map((w) => JSON.stringify(w.body))).toEqual([]);
    expect(procState(t.pid)).toBe('T');

    // The preemptor binds and runs on the room: batch stays suspended.
    api.mutate('pods', 'urgent', (p) => {
      const bound = boundPod('urgent', 'default', 60_000, 1000, '2026-12-06T11:00:00Z');
      p.metadata.annotations = bound.metadata?.annotations;
      p.spec = { ...(p.spec as object), nodeName: NODE };
      p.status = { phase: 'Running' };
    }, 'default');
    await agent?.settled();
    await new Promise((r) => setTimeout(r, 300));
    await agent?.settled();
    expect(suspension('batch', 'batch')?.state).toBe('suspended');
    expect(procState(t.pid)).toBe('T');

    // The preemptor ends: room returns, batch resumes where it was.
    const stepsBefore = (t.out().match(/^step /gm) ?? []).length;
    api.mutate('pods', 'urgent', (p) => { p.status = { phase: 'Succeeded' }; }, 'default');
    await until(() => suspension('batch', 'batch') === null, 15_000, 'the suspended annotation removed');
    await until(() => checkpoint.state(t.pid).ok && (checkpoint.state(t.pid) as { value: string }).value === 'running', 10_000, 'fake-train running again');
    expect(extenderFits()).toBe(false); // its room is held again
    expect(await t.done).toBe(0);
    expect(t.out()).toMatch(/^result ok/m);
    expect((t.out().match(/^step /gm) ?? []).length).toBe(150); // every step, none redone
    expect(stepsBefore).toBeLessThan(150);
    expect(lines.map((l) => l.fields['event'])).toEqual(expect.arrayContaining(['agent.suspend.start', 'agent.suspend.done', 'agent.resume.done']));
    expect(existsSync(join(root, 'state', 'suspensions.json')) && (JSON.parse(readFileSync(join(root, 'state', 'suspensions.json'), 'utf8')) as { pods: object }).pods).toEqual({});
  }, 60_000);

  it('a pod whose GPU processes cannot be found is answered failed, with why, and evicted', async () => {
    api.seed('pods', boundPod('web', 'default', 8_000, 0, '2026-12-06T10:00:00Z'));
    api.mutate('pods', 'web', (p) => { (p.metadata.annotations as Record<string, string>)['gpushare.io/suspend-request'] = encodeSuspendRequest({ v: 1, preemptor: 'uid-other', node: NODE, atMs: 6 }); }, 'default');
    await until(() => pod('default', 'web') === undefined, 15_000, 'web evicted');
    const eviction = api.requests.find((r) => r.subresource === 'eviction');
    expect(eviction?.body).toMatchObject({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'web', namespace: 'default' }, deleteOptions: { preconditions: { uid: 'uid-web' } } });
    const answer = api.requests.filter((r) => r.verb === 'patch' && r.name === 'web').map((r) => (r.body as { metadata: { annotations: Record<string, string | null> } }).metadata.annotations);
    const failed = decodeSuspension(answer[0]?.['gpushare.io/suspended'] ?? '');
    expect(failed.ok && failed.value).toMatchObject({ state: 'failed', preemptor: 'uid-other', reason: expect.stringMatching(/no GPU process of the pod was found to suspend: no slice region of the pod is known on this node/) });
    expect(answer[0]?.['gpushare.io/suspend-request']).toBeNull();
  }, 30_000);
});
