/**
 * Tenant isolation at the operating-system level, through the real daemon as root (docs/security.md):
 * each tenant's tasks run as its own unprivileged user, cannot read another tenant's logs,
 * region or the daemon's state, never see the daemon's environment, and a killed task takes
 * everything it started with it, processes that left its process group included (its cgroup).
 * Switching users needs root: without it these tests are skipped, saying so.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { cgroup2Mount } from '../../src/node/cgroup.js';
import { boardFile, daemonKey } from '../../src/node/sandbox-plan.js';
import { alive, Harness, sleep } from './harness.js';

const isRoot = process.getuid?.() === 0;
const SECRET = 'gs-secret-do-not-leak-4711';
const h = new Harness();

/** The task's stdout once it has printed `marker` (or ended). */
async function outputOf(id: string, marker: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await h.run(['logs', id]);
    const t = await h.task(id);
    if (r.stdout.includes(marker) || !['queued', 'starting', 'running'].includes(t.state)) return r.stdout;
    if (Date.now() > deadline) throw new Error(`task ${id} printed no "${marker}": ${r.stdout}`);
    await sleep(50);
  }
}

/** Submits `script` for `tenant` in / (a tenant's user may not enter the checkout, under /root say). */
async function submit(tenant: string, script: string): Promise<string> {
  const t = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sh', '-c', script], tenant, gpus: 0, cwd: '/' });
  return t.id;
}

/** The same on the GPU: a slice of it (memory, compute), so that both tenants' tasks fit at once. */
async function submitOnGpu(tenant: string, script: string): Promise<string> {
  const t = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sh', '-c', script], tenant, gpus: 1, memory: '1Gi', compute: 30, cwd: '/' });
  return t.id;
}

/** Board files the tests' tasks got (sandbox.taskDir's compute directory outlives daemons, by design). */
const boardsMade: string[] = [];

/** A GPU's grants in force (gpushare_board.h "Grants"): live entries whose wrapper still runs. */
function liveGrants(file: string): { index: number; uid: number; share: number; priority: number; policy: number }[] {
  const b = readFileSync(file);
  const out = [];
  for (let i = 0; i < 64; i++) {
    const at = 64 + 64 * i;
    if (b.readBigUInt64LE(at) === 0n || b.readUInt32LE(at + 8) !== 1 || !alive(b.readUInt32LE(at + 4))) continue;
    out.push({ index: i, uid: b.readUInt32LE(at + 12), share: b.readUInt32LE(at + 16), priority: b.readInt32LE(at + 20), policy: b.readUInt32LE(at + 24) });
  }
  return out;
}

/** `key value` lines as a map. */
function report(text: string): Map<string, string> {
  return new Map(text.trim().split('\n').map((l) => [l.slice(0, l.indexOf(' ')), l.slice(l.indexOf(' ') + 1)] as [string, string]));
}

describe.skipIf(!isRoot)(`tasks as their tenant's own user${isRoot ? '' : ' (skipped: the daemon must be root to switch users, and these tests are not)'}`, () => {
  beforeAll(async () => {
    // Only the state directory's own permissions stand between tasks and it (mkdtemp's 0700 would hide everything).
    chmodSync(h.dir, 0o755);
    await h.start(['--sandbox', 'on'], { GPUSHARE_TEST_TOKEN: SECRET, AWS_SECRET_ACCESS_KEY: SECRET });
  });
  afterAll(async () => {
    await h.cleanup();
    for (const f of boardsMade) rmSync(f, { force: true });
    // The killed daemon could not remove its (now empty) levels of the shared directories.
    rmSync(join('/var/lib/gpushare/tasks', daemonKey(h.stateDir)), { recursive: true, force: true });
    const mount = cgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8'));
    const root = mount === null ? null : join(mount, 'gpushare', daemonKey(h.stateDir));
    if (root === null || !existsSync(root)) return;
    const levels = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(root, e.name));
    for (const dir of [...levels, root]) {
      try {
        rmdirSync(dir);
      } catch {
        // still in use: left for the next daemon's sweep
      }
    }
  });

  it('runs team-a as its own uid, unable to read team-b\'s logs, region or process, the database or the daemon\'s environment', async () => {
    const b = await submit('team-b', 'echo "uid $(id -u)"; echo "pid $$"; echo team-b > "$HOME/private"; echo team-b-private-line; exec sleep 60');
    const bOut = report(await outputOf(b, 'team-b-private-line'));
    const bTask: TaskBody = await h.task(b);
    expect(bTask.state).toBe('running');
    const db = join(h.stateDir, 'gpushare.db');
    const probe = [
      'echo "uid $(id -u)"',
      'echo "gid $(id -g)"',
      'echo "groups $(id -G)"',
      `cat ${bTask.stdoutPath} >/dev/null 2>&1 && echo "log READ" || echo "log refused"`,
      `cat ${db} >/dev/null 2>&1 && echo "db READ" || echo "db refused"`,
      `ls ${h.stateDir} >/dev/null 2>&1 && echo "state LISTED" || echo "state refused"`,
      `cat ${dirname(bTask.regionPath)}/private >/dev/null 2>&1 && echo "bfile READ" || echo "bfile refused"`,
      `ls ${dirname(bTask.regionPath)} >/dev/null 2>&1 && echo "bdir LISTED" || echo "bdir refused"`,
      `ls ${dirname(dirname(bTask.regionPath))} >/dev/null 2>&1 && echo "tasks LISTED" || echo "tasks refused"`,
      `kill -0 ${bOut.get('pid')} 2>/dev/null && echo "signal SENT" || echo "signal refused"`,
      `env | grep -q ${SECRET} && echo "secret SEEN" || echo "secret absent"`,
      'echo "home $HOME"',
      'touch "$HOME/x" && echo "homefile written" || echo "homefile refused"',
      'echo "nnp $(grep NoNewPrivs /proc/self/status | tr -d "[:space:]")"',
      'echo done',
    ].join('; ');
    const a = await submit('team-a', probe);
    const got = report(await outputOf(a, 'done'));
    expect((await h.waitFor(a)).exitCode).toBe(0);

    const uidA = Number(got.get('uid'));
    expect(uidA).toBeGreaterThan(0);
    expect(uidA).not.toBe(Number(bOut.get('uid')));
    expect(Number(bOut.get('uid'))).toBeGreaterThan(0);
    expect(got.get('gid')).toBe(String(uidA));
    expect(got.get('groups')).toBe(String(uidA)); // no supplementary group of the daemon's
    expect(got.get('log')).toBe('refused');
    expect(got.get('db')).toBe('refused');
    expect(got.get('state')).toBe('refused');
    expect(got.get('bfile')).toBe('refused');
    expect(got.get('bdir')).toBe('refused');
    expect(got.get('tasks')).toBe('refused');
    expect(got.get('signal')).toBe('refused');
    expect(got.get('secret')).toBe('absent');
    expect(got.get('home')).toBe(dirname((await h.task(a)).regionPath)); // its own directory
    expect(got.get('homefile')).toBe('written');
    expect(got.get('nnp')).toBe('NoNewPrivs:1');
    // The daemon itself still reads team-b's log, and a second task of team-a gets the same uid.
    expect((await h.run(['logs', b])).stdout).toContain('team-b-private-line');
    // A working directory its user cannot enter is refused at the door, with the same words as
    // one that does not exist below it: the root daemon's own view tells the tenant nothing.
    const refusal = async (cwd: string): Promise<string> => {
      try {
        await h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['true'], tenant: 'team-a', gpus: 0, cwd });
      } catch (e) {
        return (e as Error).message.replace(cwd, '<cwd>');
      }
      throw new Error(`${cwd} was accepted`);
    };
    const closed = await refusal(h.stateDir);
    expect(closed).toMatch(/cwd: "<cwd>" is not a directory that the task's user \(uid \d+\) can enter/);
    expect(await refusal(join(h.stateDir, 'no-such-dir'))).toBe(closed);
    expect(await refusal(join(h.stateDir, 'tasks'))).toBe(closed);
    const again = await submit('team-a', 'id -u');
    expect((await outputOf(again, '\n')).trim()).toBe(String(uidA));
    await h.run(['kill', b]);
    await h.waitFor(b);
  });

  it("gives each tenant's task its own compute board, which no other tenant can write, cut, remove or forge, and a grant only root writes", async () => {
    const boards = '/var/lib/gpushare/tasks/compute';
    const uuid = (await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus')).gpus[0]?.uuid ?? '';
    const b = await submitOnGpu('team-b', 'echo "uid $(id -u)"; echo "dir $GPUSHARE_COMPUTE_DIR"; echo "board $GPUSHARE_COMPUTE_BOARD"; echo "grants $GPUSHARE_COMPUTE_GRANTS"; echo "limit $GPUSHARE_COMPUTE_LIMIT"; echo ready; exec sleep 60');
    const bOut = report(await outputOf(b, 'ready'));
    expect(bOut.get('dir')).toBe(boards);
    expect(bOut.get('board')).toBe('per-user');
    const grants = boardFile(boards, uuid, 0).replace(/\.u0$/, '.grants');
    boardsMade.push(grants);
    expect(bOut.get('grants')).toMatch(new RegExp(`^GPU-[0-9a-f-]+=\\d+$`));
    const bBoard = boardFile(boards, uuid, Number(bOut.get('uid')));
    boardsMade.push(bBoard);
    const probe = [
      'echo "uid $(id -u)"',
      `(: > ${bBoard}) 2>/dev/null && echo "cut DONE" || echo "cut refused"`,
      `(printf x | dd of=${bBoard} conv=notrunc status=none) 2>/dev/null && echo "write DONE" || echo "write refused"`,
      `rm -f ${bBoard} 2>/dev/null && echo "remove DONE" || echo "remove refused"`,
      `(: > ${boards}/forged) 2>/dev/null && echo "forge DONE" || echo "forge refused"`,
      `(printf x | dd of=${grants} conv=notrunc status=none) 2>/dev/null && echo "grant DONE" || echo "grant refused"`,
      `own=${boards}/$(cd ${boards} && ls | grep "[.]u$(id -u)$")`,
      'echo "own $(stat -c "%u %a %s" "$own")"',
      // every byte of its own board 0xff: every slot's share, priority and policy as high as they go
      'head -c 4160 /dev/zero | tr "\\000" "\\377" > "$own" && echo "forgeown done" || echo "forgeown REFUSED"',
      '(: > "$own") 2>/dev/null && echo "owncut done" || echo "owncut REFUSED"',
      'echo done',
    ].join('; ');
    const a = await submitOnGpu('team-a', probe);
    const got = report(await outputOf(a, 'done'));
    expect((await h.waitFor(a)).exitCode).toBe(0);
    const uidA = Number(got.get('uid'));
    boardsMade.push(boardFile(boards, uuid, uidA));
    expect([got.get('cut'), got.get('write'), got.get('remove'), got.get('forge'), got.get('grant')]).toEqual(['refused', 'refused', 'refused', 'refused', 'refused']);
    expect(got.get('own')).toBe(`${uidA} 644 4160`);
    expect(got.get('forgeown')).toBe('done');
    // The grants are root's, as the daemon asked (30% hard at normal priority), whatever the
    // tasks wrote on their boards: team-a's was freed when it ended, team-b's holds while it runs.
    const st0 = statSync(grants);
    expect([st0.uid, st0.mode & 0o777, st0.size]).toEqual([0, 0o644, 4160]);
    const live = liveGrants(grants);
    const share = Number(bOut.get('limit')) * 10_000;
    expect(live.filter((g) => g.uid === uidA)).toEqual([]);
    expect(live.filter((g) => g.uid === Number(bOut.get('uid')))).toEqual([{ index: Number(bOut.get('grants')?.split('=')[1]), uid: Number(bOut.get('uid')), share, priority: 1, policy: 1 }]);
    expect(got.get('owncut')).toBe('done'); // its own, which the others read and never map
    const st = statSync(bBoard);
    expect([st.uid, st.mode & 0o777, st.size]).toEqual([Number(bOut.get('uid')), 0o644, 4160]);
    expect(statSync(boards).uid).toBe(0);
    expect((await h.task(b)).state).toBe('running');
    await h.run(['kill', b]);
  });

  it('kills everything a task started, a grandchild that left its process group with setsid included, and removes its cgroup and directory', async (ctx) => {
    if (/no per-task cgroups/.test(h.log)) ctx.skip(); // said at start-up: no writable cgroup v2 here
    const id = await submit('team-a', 'setsid sleep 300 & echo "grandchild $!"; echo "cgroup $(grep ^0:: /proc/self/cgroup)"; echo ready; wait');
    const got = report(await outputOf(id, 'ready'));
    const grandchild = Number(got.get('grandchild'));
    expect(alive(grandchild)).toBe(true);
    const task = await h.task(id);
    // It really left: its own session, not the task's process group.
    const stat = readFileSync(`/proc/${grandchild}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    expect(Number(fields[2])).toBe(grandchild); // field 5, pgrp: its own
    expect(Number(fields[2])).not.toBe(task.pid);
    const cgroup = got.get('cgroup')?.replace(/^0::/, '') ?? '';
    expect(cgroup).toMatch(new RegExp(`/tenant-team-a/task-${id}$`));

    expect((await h.run(['kill', id])).status).toBe(0);
    await h.waitFor(id);
    const deadline = Date.now() + 5_000;
    while (alive(grandchild) && Date.now() < deadline) await sleep(20);
    expect(alive(grandchild)).toBe(false);
    const cgroupDir = join(cgroup2Mount(readFileSync('/proc/self/mountinfo', 'utf8')) ?? '/nonexistent', cgroup);
    expect(cgroupDir.startsWith('/nonexistent')).toBe(false);
    while ((existsSync(dirname(task.regionPath)) || existsSync(cgroupDir)) && Date.now() < deadline) await sleep(20);
    expect(existsSync(dirname(task.regionPath))).toBe(false);
    expect(existsSync(cgroupDir)).toBe(false);
  });

  it('kills what a task left in its cgroup when it ended while no daemon ran, at the next start', async (ctx) => {
    if (/no per-task cgroups/.test(h.log)) ctx.skip();
    const id = await submit('team-b', 'setsid sleep 300 & echo "grandchild $!"; echo ready; exec sleep 300');
    const grandchild = Number(report(await outputOf(id, 'ready')).get('grandchild'));
    const task = await h.task(id);
    await h.stop('SIGKILL');
    // The task's own process group ends while no daemon runs; its setsid'd grandchild does not.
    process.kill(-(task.pid ?? 0), 'SIGKILL');
    await sleep(100);
    expect(alive(grandchild)).toBe(true);
    await h.start(['--sandbox', 'on']);
    expect((await h.waitFor(id)).state).not.toBe('running');
    const deadline = Date.now() + 5_000;
    while (alive(grandchild) && Date.now() < deadline) await sleep(20);
    expect(alive(grandchild)).toBe(false);
  });
});
