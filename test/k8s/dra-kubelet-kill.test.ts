/**
 * The plugin killed (SIGKILL) at arbitrary moments while the kubelet prepares and unprepares:
 * after each restart its files and its checkpoint agree, and the kubelet's retries converge
 * (every claim the kubelet still wants is prepared, everything else is gone).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { currentBootId, readCheckpoint } from '../../src/k8s/dra/kubelet-checkpoint.js';
import { FakeKubelet } from './dra-kubelet-fixtures.js';

const child = fileURLToPath(new URL('./dra-kubelet-child.ts', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'gs-dra-kill-'));
let running: ChildProcess | null = null;

afterEach(() => {
  running?.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function startChild(): Promise<string> {
  const p = spawn(process.execPath, ['--import', 'tsx', child, root], { stdio: ['ignore', 'pipe', 'inherit'] });
  running = p;
  return new Promise((resolve, reject) => {
    let text = '';
    p.stdout?.on('data', (b: Buffer) => {
      text += b.toString();
      const m = /ready (\S+)\n/.exec(text);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    p.once('exit', (code) => reject(new Error(`plugin exited ${code} before it was ready`)));
  });
}

async function kill(): Promise<void> {
  const p = running;
  if (p === null) return;
  const gone = new Promise((resolve) => p.once('exit', resolve));
  p.kill('SIGKILL');
  await gone;
  running = null;
}

const ref = (n: number): { namespace: string; name: string; uid: string } => ({ namespace: 'ml', name: `c-${n}`, uid: `u-${n}` });
const specUids = (): string[] => readdirSync(join(root, 'cdi')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/^gpushare\.io-claim_(.*)\.json$/, '$1')).sort();
const checkpointUids = (): string[] => {
  const path = join(root, 'plugins', 'gpu.gpushare.io', 'checkpoint.json');
  return readCheckpoint(path, currentBootId()).claims.map((c) => c.uid).sort();
};

it('converges after kills at arbitrary moments of prepares and unprepares', async () => {
  const wanted = new Set<number>();
  for (let round = 0; round < 3; round++) {
    const socket = await startChild();
    // At start the checkpoint and the files agree, whatever the kill interrupted.
    expect(specUids()).toEqual(checkpointUids());
    const kubelet = new FakeKubelet();
    // The kubelet retries what it did not get an answer for: everything it still wants prepared.
    const retry = await kubelet.prepare(socket, [...wanted].map(ref));
    expect(Object.values(retry.claims).every((c) => c.error === '')).toBe(true);
    // Work, and a kill at a moment that varies per round.
    let calls = 0;
    const work = (async (): Promise<void> => {
      for (let i = 0; ; i++) {
        const n = round * 1000 + i;
        wanted.add(n);
        await kubelet.prepare(socket, [ref(n)]);
        calls++;
        if (i % 3 === 2) {
          const drop = n - 1;
          await kubelet.unprepare(socket, [ref(drop)]);
          wanted.delete(drop);
        }
      }
    })().catch(() => undefined); // the kill ends it with an unavailable socket
    await new Promise((resolve) => setTimeout(resolve, 300 + round * 170));
    await kill();
    await work;
    expect(calls).toBeGreaterThan(2); // the kill interrupted work under way, not an idle plugin
    kubelet.close();
  }
  const socket = await startChild();
  expect(specUids()).toEqual(checkpointUids());
  const kubelet = new FakeKubelet();
  const wantedRefs = [...wanted].map(ref);
  expect(Object.values((await kubelet.prepare(socket, wantedRefs)).claims).every((c) => c.error === '')).toBe(true);
  // Unprepares the kubelet may have sent before a kill and not seen answered come again; then
  // exactly what the kubelet wants is prepared.
  const everything = checkpointUids().filter((uid) => !wanted.has(Number(uid.slice(2)))).map((uid) => ref(Number(uid.slice(2))));
  await kubelet.unprepare(socket, everything);
  expect(checkpointUids()).toEqual(wantedRefs.map((r) => r.uid).sort());
  expect(specUids()).toEqual(checkpointUids());
  await kubelet.unprepare(socket, wantedRefs);
  expect(checkpointUids()).toEqual([]);
  expect(specUids()).toEqual([]);
  expect(readdirSync(join(root, 'plugins', 'gpu.gpushare.io', 'claims'))).toEqual([]);
  kubelet.close();
}, 60_000);
