/**
 * Cordons and faults through the daemon on the simulated backend: new work keeps off a held GPU
 * and says why, running work is untouched, and the GPU takes work again when the admin lifts
 * the hold or the fault recovers (here, a reset the backend reports).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { Gpu } from '../domain/index.js';
import type { GpuBackend } from '../gpu/backend.js';
import { openBackend } from '../gpu/open.js';
import type { Task } from '../contract/task.js';
import { Daemon } from './daemon.js';
import { findNativePaths } from './launcher.js';
import { openDatabase } from './store/db.js';
import { TaskStore } from './store/tasks.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-gpu-health-'));
const sim = openBackend({ backend: 'simulated', simulate: '2xH100-80GB' }).backend;
/** The simulated GPUs, some reported lost (a reset under way). */
const lost = new Set<string>();
const backend: GpuBackend = {
  kind: sim.kind,
  description: sim.description,
  system: () => sim.system(),
  gpus: (): Gpu[] => sim.gpus().map((g) => (lost.has(g.uuid) ? { ...g, health: 'lost' } : g)),
  close: () => sim.close(),
};
const db = openDatabase(join(dir, 'db'));
const store = new TaskStore(db);
const daemon = new Daemon({ stateDir: dir, backend, store, logger: pino({ level: 'silent' }), native: findNativePaths(), policy: 'binpack', killGraceMs: 200 });
daemon.start();
afterAll(async () => {
  for (const t of store.list()) daemon.kill(t.id, admin, { signal: 'SIGKILL' });
  await until(() => store.list().length === 0);
  daemon.close();
  db.close();
  backend.close();
  rmSync(dir, { recursive: true, force: true });
});

const admin = { actor: 'alice', role: 'admin' as const, tenant: null };
const [gpu0, gpu1] = sim.gpus().map((g) => g.uuid) as [string, string];

async function until(ok: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const state = (id: string): Task => daemon.get(id);
/** A task that needs most of one GPU: it fits either, never both on one. */
const big = (): Task => daemon.submit({ command: ['sleep', '30'], cwd: '/', memory: '60Gi' }, admin);

describe('a held GPU takes no new work', () => {
  it('keeps new work off a cordoned GPU with the cordon as its reason, and lets it back on uncordon; running work stays', async () => {
    const first = big();
    await until(() => state(first.id).state === 'running');
    const held = state(first.id).gpus?.[0]?.uuid;
    const other = held === gpu0 ? gpu1 : gpu0;
    const otherIndex = other === gpu0 ? 0 : 1;
    daemon.cordonGpu(other, admin, 'fan');
    const second = big();
    await until(() => state(second.id).waiting !== null);
    const waiting = state(second.id).waiting;
    expect(waiting?.kind).toBe('noRoom');
    expect(waiting?.kind === 'noRoom' ? waiting.gpus.map((g) => [g.gpu, g.reason, g.text]) : null).toContainEqual([otherIndex, 'gpuCordoned', `GPU ${otherIndex} cordoned by alice: fan`]);
    expect(state(first.id).state).toBe('running');
    expect(daemon.gpus().find((g) => g.uuid === other)).toMatchObject({ cordoned: true, cordon: { by: 'alice', note: 'fan' }, fault: null });
    daemon.uncordonGpu(other, admin);
    await until(() => state(second.id).state === 'running');
    expect(state(second.id).gpus?.[0]?.uuid).toBe(other);
    for (const t of [first, second]) daemon.kill(t.id, admin, { signal: 'SIGKILL' });
    await until(() => store.list().length === 0);
  });

  it('keeps new work off a faulted GPU (XID 79) until a reset: lost, then reachable again', async () => {
    daemon.markGpuFault(gpu0, { kind: 'xid', code: 79, at: Date.now() });
    daemon.markGpuFault(gpu1, { kind: 'ecc', code: 2, at: Date.now() });
    const t = big();
    await until(() => state(t.id).waiting !== null);
    const waiting = state(t.id).waiting;
    expect(waiting?.kind === 'noRoom' ? waiting.gpus.map((g) => g.text) : null).toEqual(['GPU 0 unhealthy: XID 79', 'GPU 1 unhealthy: uncorrectable ECC errors 2']);
    // A GPU the simulated backend reports with ECC errors at 0: the ECC fault recovers on the next reading.
    await new Promise((r) => setTimeout(r, 5));
    daemon.gpus();
    await until(() => state(t.id).state === 'running');
    expect(state(t.id).gpus?.[0]?.uuid).toBe(gpu1);
    // GPU 0's XID stays until the GPU resets.
    const next = big();
    await until(() => state(next.id).waiting !== null);
    expect(daemon.gpuHealth(gpu0).fault).toMatchObject({ kind: 'xid', code: 79 });
    lost.add(gpu0);
    await new Promise((r) => setTimeout(r, 5));
    daemon.gpus();
    expect(daemon.gpuHealth(gpu0).fault?.lostAt).not.toBeNull();
    lost.delete(gpu0);
    await new Promise((r) => setTimeout(r, 5));
    daemon.gpus();
    expect(daemon.gpuHealth(gpu0).fault).toBeNull();
    await until(() => state(next.id).state === 'running');
    expect(state(t.id).state).toBe('running');
    expect(store.events(0, 1000).filter((e) => e.type.startsWith('gpu.')).map((e) => [e.type, e.data['how'] ?? null])).toEqual([
      ['gpu.cordoned', null],
      ['gpu.uncordoned', null],
      ['gpu.fault', null],
      ['gpu.fault', null],
      ['gpu.recovered', 'ecc'],
      ['gpu.recovered', 'reset'],
    ]);
  });
});
