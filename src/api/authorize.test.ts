import { describe, expect, it } from 'vitest';
import type { GpuWithSlices } from '../contract/gpus.js';
import type { Principal } from '../contract/principal.js';
import type { Task } from '../contract/task.js';
import { askedPriority, canSeeEvent, canSeeTask, checkSubmitPriority, eventView, canSeeTenant, checkSubmitTenant, eventScope, requireAdmin, taskView, viewerKey, visibleGpus, visibleTask, visibleTasks, visibleTenantName } from './authorize.js';

const admin: Principal = { actor: 'local:1000', role: 'admin', tenant: null };
const opsAdmin: Principal = { actor: 'tenant:ops', role: 'admin', tenant: 'ops' };
const alice: Principal = { actor: 'tenant:alice', role: 'user', tenant: 'alice' };
const task = (id: string, tenant: string | null): Task => ({ id, tenant }) as Task;
const code = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (err) {
    return `${(err as { code: string }).code}: ${(err as Error).message}`;
  }
};

describe('authorization at the API edge', () => {
  it.each([
    ['an admin', admin, task('a', 'bob'), true],
    ['an admin of a tenant, for another tenant', opsAdmin, task('a', 'bob'), true],
    ['a user, for its own tenant', alice, task('a', 'alice'), true],
    ['a user, for another tenant', alice, task('a', 'bob'), false],
    ['a user, for a task of no tenant', alice, task('a', null), false],
  ])('task visibility: %s', (_name, who, t, sees) => {
    expect(canSeeTask(who, t)).toBe(sees);
    expect(visibleTasks(who, [t])).toEqual(sees ? [t] : []);
    expect(code(() => visibleTask(who, t, 'a1'))).toBe(sees ? null : 'GS_ERR_NOT_FOUND: no task "a1"');
  });

  it('admin-only actions name what was refused and who asked', () => {
    expect(code(() => requireAdmin(admin, 'creating a tenant'))).toBeNull();
    expect(code(() => requireAdmin(alice, 'creating a tenant'))).toBe('GS_ERR_FORBIDDEN: creating a tenant needs the admin role; tenant "alice" has the user role');
  });

  it.each([
    [admin, 'bob', null],
    [admin, undefined, null],
    [alice, undefined, null],
    [alice, 'alice', null],
    [alice, 'bob', 'GS_ERR_FORBIDDEN: tenant "alice" may not submit for tenant "bob"'],
  ] as const)('submission by %j for tenant %j', (who, asked, refusal) => {
    expect(code(() => checkSubmitTenant(who, asked))).toBe(refusal);
  });

  it('events: an admin reads all; a user its tenant\'s tasks\' only, never events of no task or of a task gone', () => {
    expect(eventScope(admin)).toBeUndefined();
    expect(eventScope(alice)).toBe('alice');
    expect(eventScope({ actor: 'x', role: 'user', tenant: null })).toBe('');
    const tasks = new Map([['mine', task('mine', 'alice')], ['theirs', task('theirs', 'bob')]]);
    const taskOf = (id: string): Task | null => tasks.get(id) ?? null;
    const seen = (who: Principal): (string | null)[] => [{ taskId: 'mine' }, { taskId: 'theirs' }, { taskId: null }, { taskId: 'gone' }].filter((e) => canSeeEvent(who, e, taskOf)).map((e) => e.taskId);
    expect(seen(admin)).toEqual(['mine', 'theirs', null, 'gone']);
    expect(seen(alice)).toEqual(['mine']);
  });

  it('tenants: a user sees its own only; another reads as not there', () => {
    expect([canSeeTenant(admin, 'bob'), canSeeTenant(alice, 'alice'), canSeeTenant(alice, 'bob')]).toEqual([true, true, false]);
    expect(visibleTenantName(alice, 'alice')).toBe('alice');
    expect(code(() => visibleTenantName(alice, 'bob'))).toBe('GS_ERR_NOT_FOUND: no tenant "bob"');
  });

  it('GPUs: a user sees that another tenant\'s slice is there and its size, not whose it is', () => {
    const slice = (taskId: string, tenant: string | null) => ({ taskId, tenant, priority: 0, memoryBytes: 3, computeMilli: 0, usedMemoryBytes: null, computeShare: null, smRange: null });
    const gpus = [{ uuid: 'GPU-0', slices: [slice('mine', 'alice'), slice('theirs', 'bob'), slice('none', null)] }] as unknown as GpuWithSlices[];
    expect(visibleGpus(admin, gpus)).toBe(gpus);
    const seen = visibleGpus(alice, gpus)[0]?.slices.map((s) => [s.taskId, s.tenant, s.memoryBytes]);
    expect(seen).toEqual([['mine', 'alice', 3], [null, null, 3], [null, null, 3]]);
    expect(gpus[0]?.slices[1]?.taskId).toBe('theirs'); // the daemon's answer is not changed
  });

  it("why a task waits: another tenant's task is not named to a user", () => {
    const tenants = new Map<string, string | null>([['mine1', 'alice'], ['bob1', 'bob'], ['bob2', 'bob']]);
    const tenantOf = (id: string): string | null | undefined => tenants.get(id);
    const waitingOn = (waiting: Task['waiting']): Task => ({ id: 'mine2', tenant: 'alice', waiting }) as Task;
    const behindBob = waitingOn({ kind: 'behind', taskId: 'bob1', text: 'queued behind task bob1, which does not fit yet (no task jumps the queue)' });
    expect(taskView(alice, behindBob, tenantOf).waiting).toEqual({ kind: 'behind', taskId: null, text: "queued behind another tenant's task, which does not fit yet (no task jumps the queue)" });
    expect(taskView(admin, behindBob, tenantOf)).toBe(behindBob);
    expect(taskView(opsAdmin, behindBob, tenantOf)).toBe(behindBob);
    const behindMine = waitingOn({ kind: 'behind', taskId: 'mine1', text: 'queued behind task mine1' });
    expect(taskView(alice, behindMine, tenantOf)).toBe(behindMine);
    expect(taskView(alice, waitingOn({ kind: 'behind', taskId: 'gone', text: 'queued behind task gone' }), tenantOf).waiting).toMatchObject({ taskId: null, text: "queued behind another tenant's task" });
    const preempting = waitingOn({ kind: 'preempting', victims: [{ taskId: 'mine1', action: 'suspend' }, { taskId: 'bob2', action: 'kill' }], text: 'making room by preemption: suspending mine1, killing bob2' });
    expect(taskView(alice, preempting, tenantOf).waiting).toEqual({
      kind: 'preempting',
      victims: [{ taskId: 'mine1', action: 'suspend' }, { taskId: null, action: 'kill' }],
      text: "making room by preemption: suspending mine1, killing another tenant's task",
    });
    const noRoom = waitingOn({ kind: 'noRoom', gpus: [], preemption: 'off', text: 'x' });
    expect(taskView(alice, noRoom, tenantOf)).toBe(noRoom);
  });

  it("preemptedBy, messages and events do not name another tenant's task to a user", () => {
    const [mine, theirs] = ['a1a1a1a1a1a1', 'b0b0b0b0b0b0'];
    const tenants = new Map<string, string | null>([[mine, 'alice'], [theirs, 'bob']]);
    const tenantOf = (id: string): string | null | undefined => tenants.get(id);
    const preempted = { id: 'a2a2a2a2a2a2', tenant: 'alice', waiting: null, preemptedBy: theirs, message: `preempted by task ${theirs}: killed because it could not be suspended` } as Task;
    expect(taskView(alice, preempted, tenantOf)).toMatchObject({ preemptedBy: null, message: "preempted by another tenant's task: killed because it could not be suspended" });
    expect(taskView(admin, preempted, tenantOf)).toBe(preempted);
    const byMine = { ...preempted, preemptedBy: mine, message: `preempted by task ${mine} on GPU-0000-1111-2222-333333333333` } as Task;
    // Its own task, and what only looks like a task id (a UUID's last group), stay as they are.
    expect(taskView(alice, byMine, tenantOf)).toBe(byMine);
    const event = { seq: 1, at: 0, type: 'task.evicted', taskId: 'a2a2a2a2a2a2', data: { preemptedBy: theirs, by: `preemption:${theirs}`, also: mine } };
    expect(eventView(alice, event, tenantOf).data).toEqual({ preemptedBy: "another tenant's task", by: "preemption:another tenant's task", also: mine });
    expect(eventView(admin, event, tenantOf)).toBe(event);
    expect(eventView(alice, { ...event, data: { also: mine } }, tenantOf).data).toEqual({ also: mine });
  });

  it("a user token's priority is capped; an admin's is not", () => {
    const capped: Principal = { ...alice, maxPriority: 500 };
    expect([askedPriority(undefined), askedPriority('HIGH'), askedPriority(' 700 '), askedPriority('urgent')]).toEqual([500, 900, 700, null]);
    expect(code(() => checkSubmitPriority(capped, 500))).toBeNull();
    expect(code(() => checkSubmitPriority(capped, null))).toBeNull(); // the daemon refuses it, with its own message
    expect(code(() => checkSubmitPriority(capped, 900))).toMatch(/^GS_ERR_FORBIDDEN: priority 900 is more than this token may ask \(at most 500\)/);
    expect(code(() => checkSubmitPriority({ ...opsAdmin, maxPriority: 500 }, 1000))).toBeNull();
  });

  it('keeps cached lists apart per viewer', () => {
    expect(new Set([viewerKey(admin), viewerKey(opsAdmin), viewerKey(alice), viewerKey({ ...alice, actor: 'other' })])).toEqual(new Set(['*admin', 'tenant:alice']));
  });
});
