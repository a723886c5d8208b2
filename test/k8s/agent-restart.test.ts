/**
 * `gpushare k8s node` as the DaemonSet runs it (the built CLI, a real process): ready on its
 * probe socket, a claim prepared through the kubelet's gRPC, then SIGTERM: it exits cleanly,
 * its sockets gone (the kubelet deregisters it) and the prepared claim's state on disk; started
 * again, it answers that claim as before without reading it and unprepares it. A bad
 * configuration exits at once with the reason and leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from '../helpers/cli.js';
import { claimJson, FakeKubelet } from './dra-kubelet-fixtures.js';
import { startFakeApiServer, type FakeApiServer } from './fake-apiserver.js';

const NODE = 'gpu-node-7';
const root = mkdtempSync(join(tmpdir(), 'gs-agent-cli-'));
const kubelet = new FakeKubelet();
let api: FakeApiServer;
let running: ChildProcess | null = null;
const paths = {
  kubeconfig: join(root, 'kubeconfig'),
  config: join(root, 'agent.json'),
  library: join(root, 'libgpushare.so'),
  plugins: join(root, 'plugins'),
  registry: join(root, 'registry'),
  cdi: join(root, 'cdi'),
  health: join(root, 'health.sock'),
};
const pluginSocket = join(paths.plugins, 'gpu.gpushare.io', 'dra.sock');
const claim = { namespace: 'ml', name: 'train-gpu', uid: 'claim-uid-1' };

beforeAll(async () => {
  api = await startFakeApiServer();
  api.seed('nodes', { metadata: { name: NODE, uid: 'node-uid-7' } });
  api.seed('resourceclaims', claimJson({ uid: claim.uid, results: [{ device: 'gpu-0', pool: NODE, consumedCapacity: { memory: '8Gi', cores: '30' } }] }));
  writeFileSync(paths.kubeconfig, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'fake',
    clusters: [{ name: 'fake', cluster: { server: api.url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'fake', user: { token: 'fake-token' } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake' } }],
  }));
  writeFileSync(paths.config, JSON.stringify({ pollMs: 200, suspend: { stateFile: join(root, 'state', 'suspensions.json') } }));
  writeFileSync(paths.library, 'not really a library');
});

afterAll(async () => {
  running?.kill('SIGKILL');
  kubelet.close();
  await api.close();
  rmSync(root, { recursive: true, force: true });
});

const args = ['k8s', 'node', '--config', paths.config, '--node-name', NODE, '--kubeconfig', paths.kubeconfig, '--simulate', '1xH100-80GB', '--library', paths.library,
  '--plugin-dir', paths.plugins, '--registry-dir', paths.registry, '--cdi-dir', paths.cdi, '--health-listen', paths.health, '--metrics-listen', 'off', '--log-level', 'info'];

function readyz(): Promise<number> {
  return new Promise((resolve) => {
    request({ socketPath: paths.health, path: '/readyz' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    }).on('error', () => resolve(0)).end();
  });
}

async function startAgent(): Promise<{ child: ChildProcess; stderr: () => string; exit: Promise<number | null> }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'gpushare.js'), ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, GPUSHARE_CUDA_PATH: join(root, 'no-libcuda.so') } });
  running = child;
  let stderr = '';
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exited = false;
  void exit.then(() => { exited = true; });
  for (let ready = 0; ready !== 200;) {
    if (exited) throw new Error(`the agent exited before it was ready:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
    ready = existsSync(paths.health) ? await readyz() : 0;
  }
  return { child, stderr: () => stderr, exit };
}

describe('gpushare k8s node', () => {
  it('SIGTERM then a restart keeps the prepared claims', async () => {
    const first = await startAgent();
    const prepared = await kubelet.prepare(pluginSocket, [claim]);
    expect(prepared.claims[claim.uid]?.error).toBe('');
    expect(prepared.claims[claim.uid]?.devices[0]?.cdi_device_ids).toEqual([`gpushare.io/claim=${claim.uid}`]);
    kubelet.close();

    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    running = null;
    expect(first.stderr()).toMatch(/"event":"agent.stopping"/);
    // The sockets are gone (the kubelet deregisters the plugin); the claim's state stays.
    expect(readdirSync(paths.registry)).toEqual([]);
    expect(existsSync(pluginSocket)).toBe(false);
    expect(existsSync(paths.health)).toBe(false);
    expect(readdirSync(paths.cdi)).toEqual([`gpushare.io-claim_${claim.uid}.json`]);
    expect(existsSync(join(paths.plugins, 'gpu.gpushare.io', 'checkpoint.json'))).toBe(true);
    // Slices and the annotation stay: the GPUs did not go anywhere.
    expect(api.objects('resourceslices')).toHaveLength(1);
    expect(api.object('nodes', NODE)?.metadata.annotations).toHaveProperty(['gpushare.io/node-gpus']);

    // Started again: the claim is answered from its state (the API server would fail a read now).
    api.failNext({ verb: 'get', resource: 'resourceclaims' }, { code: 500 }, 10);
    const second = await startAgent();
    const again = await kubelet.prepare(pluginSocket, [claim]);
    expect(again.claims[claim.uid]).toEqual(prepared.claims[claim.uid]);
    expect((await kubelet.unprepare(pluginSocket, [claim])).claims[claim.uid]).toEqual({ error: '' });
    expect(readdirSync(paths.cdi)).toEqual([]);
    // Republishing after a restart finds everything as it should be: no slice is rewritten.
    expect(api.writes('resourceslices').filter((w) => w.verb !== 'create')).toEqual([]);
    kubelet.close();
    second.child.kill('SIGTERM');
    expect(await second.exit).toBe(0);
    running = null;
  }, 60_000);

  it('a bad configuration: exits with the reason, nothing started', () => {
    const env = { NODE_NAME: undefined };
    const r = runCli(['k8s', 'node', '--kubeconfig', paths.kubeconfig, '--plugin-dir', join(root, 'other-plugins'), '--registry-dir', join(root, 'other-registry')], env);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no node name: pass --node-name, set nodeName in the config file, or NODE_NAME/);
    const layout = runCli(['k8s', 'node', '--node-name', NODE, '--layout', 'striped'], env);
    expect(layout.status).not.toBe(0);
    expect(layout.stderr).toMatch(/--layout.*striped.*Allowed choices are consumable, fixed/);
    expect(existsSync(join(root, 'other-plugins'))).toBe(false);
    expect(existsSync(join(root, 'other-registry'))).toBe(false);
  });
});
