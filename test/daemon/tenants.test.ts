import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecordBody, TaskBody, TenantBody } from '../../src/contract/schemas.js';
import { Client } from '../../src/cli/client.js';
import { freePort } from '../helpers/api.js';
import { Harness } from './harness.js';

const GiB = 2 ** 30;
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const h = new Harness();
let port = 0;
let url = '';


beforeAll(async () => {
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
  const config = join(h.dir, 'config.json');
  writeFileSync(
    config,
    JSON.stringify({
      tokens: [
        { sha256: sha('alice-secret'), tenant: 'alice' },
        { sha256: sha('bob-secret'), tenant: 'bob', role: 'user' },
        { sha256: sha('ops-secret'), tenant: 'ops', role: 'admin' },
      ],
      tenants: [{ name: 'from-config', quota: { gpus: 1, memory: '10Gi' } }],
    }),
  );
  await h.start(['--config', config], {}, undefined, [`127.0.0.1:${port}`]);
});
afterAll(async () => {
  await h.cleanup();
});

const as = (token: string): Record<string, string> => ({ GPUSHARE_HOST: url, GPUSHARE_TOKEN: token });
const tcp = (token: string | undefined): Client => new Client({ kind: 'tcp', url: new URL(url), token });

describe('tenants and quotas (CLI over the Unix socket, the local admin)', () => {
  it('sets the tenants the config file declares, audited as the config', async () => {
    expect(await h.client.json<TenantBody>('GET', '/v1/tenants/from-config')).toMatchObject({ quota: { gpus: 1, memoryBytes: 10 * GiB, computeMilli: null }, registered: true });
    const audit = await h.client.json<AuditRecordBody[]>('GET', '/v1/audit');
    expect(audit.filter((a) => a.target === 'from-config').map((a) => [a.action, a.actor, a.result])).toEqual([['tenant.create', `config:${join(h.dir, 'config.json')}`, 'ok']]);
  });

  it('creates, lists, changes and deletes a tenant; each change is audited', async () => {
    const c = await h.run(['tenant', 'create', 'team-a', '--gpus', '1', '--mem', '40Gi', '--compute', '150']);
    expect(c.stderr).toBe('');
    expect(c.status).toBe(0);
    const ls = JSON.parse((await h.run(['tenant', 'ls', '--json'])).stdout) as TenantBody[];
    expect(ls.find((t) => t.name === 'team-a')).toMatchObject({ quota: { gpus: 1, memoryBytes: 40 * GiB, computeMilli: 1500 }, registered: true, running: 0 });
    expect((await h.run(['tenant', 'set-quota', 'team-a', '--gpus', 'none', '--compute', '50%'])).status).toBe(0);
    expect((await h.client.json<TenantBody>('GET', '/v1/tenants/team-a')).quota).toEqual({ gpus: null, memoryBytes: 40 * GiB, computeMilli: 500 });
    const table = (await h.run(['tenant', 'ls'])).stdout;
    expect(table).toMatch(/^TENANT\s+GPUS\s+MEMORY\s+COMPUTE\s+RUNNING\s+QUEUED$/m);
    expect(table).toMatch(/^team-a\s+0 \/ -\s+0 B \/ 40 GiB\s+0% \/ 50%\s+0\s+0$/m);
    expect((await h.run(['tenant', 'rm', 'team-a'])).status).toBe(0);
    const gone = await h.run(['tenant', 'set-quota', 'team-a', '--gpus', '1']);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(/no tenant "team-a" \[GS_ERR_NOT_FOUND\]/);
    const audit = JSON.parse((await h.run(['audit', '--json'])).stdout) as AuditRecordBody[];
    expect(audit.filter((a) => a.target === 'team-a').map((a) => [a.action, a.result])).toEqual([
      ['tenant.create', 'ok'],
      ['tenant.set-quota', 'ok'],
      ['tenant.delete', 'ok'],
      ['tenant.set-quota', 'GS_ERR_NOT_FOUND'],
    ]);
    expect(audit.find((a) => a.action === 'tenant.set-quota' && a.result === 'ok')?.detail).toEqual({
      before: { gpus: 1, memoryBytes: 40 * GiB, computeMilli: 1500 },
      after: { gpus: null, memoryBytes: 40 * GiB, computeMilli: 500 },
    });
  });

  it('refuses a task bigger than its tenant quota with a precise message, records the refusal, creates nothing', async () => {
    expect((await h.run(['tenant', 'create', 'small', '--gpus', '1', '--mem', '20Gi'])).status).toBe(0);
    const before = await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1');
    const r = await h.run(['run', '--tenant', 'small', '--mem', '30Gi', '--', 'true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/exceeds tenant "small"'s quota, so it could never start: asks 30 GiB of GPU memory; 20 GiB of its memory quota is left \[GS_ERR_QUOTA_EXCEEDED\]/);
    const r2 = await h.run(['run', '--tenant', 'small', '--gpus', '2', '--mem', '1Gi', '--', 'true']);
    // One GPU here: "2 GPUs" is refused as unsatisfiable before the quota is looked at.
    expect(r2.stderr).toMatch(/GS_ERR_UNSATISFIABLE/);
    expect(await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1')).toEqual(before);
    const audit = await h.client.json<AuditRecordBody[]>('GET', '/v1/audit?limit=10000');
    expect(audit.at(-2)).toMatchObject({ action: 'task.submit', result: 'GS_ERR_QUOTA_EXCEEDED', message: expect.stringMatching(/memory quota/) });
  });

  it('holds a task back while its tenant is at its quota, without holding up other tenants', async () => {
    expect((await h.run(['tenant', 'create', 'capped', '--mem', '30Gi'])).status).toBe(0);
    const first = await h.detach(['--tenant', 'capped', '--mem', '20Gi', '--', 'sleep', '30']);
    await h.waitFor(first, (t) => t.state === 'running');
    const second = await h.detach(['--tenant', 'capped', '--mem', '20Gi', '--', 'sleep', '30']);
    const other = await h.detach(['--tenant', 'other', '--mem', '20Gi', '--', 'sleep', '30']);
    await h.waitFor(other, (t) => t.state === 'running');
    expect(await h.task(second)).toMatchObject({ state: 'queued', message: 'waiting for tenant quota: asks 20 GiB of GPU memory; 10 GiB of its memory quota is left' });
    const capped = await h.client.json<TenantBody>('GET', '/v1/tenants/capped');
    expect(capped).toMatchObject({ usage: { gpus: 1, memoryBytes: 20 * GiB }, running: 1, queued: 1 });
    // Raising the quota lets it start at once.
    expect((await h.run(['tenant', 'set-quota', 'capped', '--mem', '40Gi'])).status).toBe(0);
    expect(await h.waitFor(second, (t) => t.state === 'running')).toMatchObject({ message: null });
    const rm = await h.run(['tenant', 'rm', 'capped']);
    expect(rm.status).toBe(1);
    expect(rm.stderr).toMatch(/tenant "capped" has 2 queued or running task\(s\); kill them first, or change its quota instead \[GS_ERR_CONFLICT\]/);
    for (const id of [first, second, other]) await h.run(['kill', id]);
    for (const id of [first, second, other]) await h.waitFor(id);
  });
});

describe('quota under concurrent submissions', () => {
  it('never lets a tenant hold more than its quota, and runs everything in the end', async () => {
    expect((await h.run(['tenant', 'create', 'burst', '--mem', '30Gi'])).status).toBe(0);
    const ids = await Promise.all(
      Array.from({ length: 12 }, () => h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sleep', '0.2'], cwd: '/', tenant: 'burst', memory: '10Gi' }).then((t) => t.id)),
    );
    let most = 0;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [t, tasks] = await Promise.all([h.client.json<TenantBody>('GET', '/v1/tenants/burst'), h.client.json<TaskBody[]>('GET', '/v1/tasks')]);
      most = Math.max(most, t.usage.memoryBytes);
      const running = tasks.filter((x) => x.tenant === 'burst' && x.state === 'running');
      expect(running.reduce((sum, x) => sum + (x.gpus?.[0]?.memoryBytes ?? 0), 0)).toBeLessThanOrEqual(30 * GiB);
      if (tasks.every((x) => x.tenant !== 'burst')) break;
      if (Date.now() > deadline) throw new Error('burst tasks did not all finish');
    }
    expect(most).toBeLessThanOrEqual(30 * GiB);
    expect(most).toBeGreaterThan(0);
    const ended = await Promise.all(ids.map((id) => h.waitFor(id)));
    expect(ended.map((t) => [t.state, t.exitCode])).toEqual(ids.map(() => ['exited', 0]));
  });
});

describe('TCP with bearer tokens', () => {
  it('refuses callers without a known token, and audits nothing for them', async () => {
    const audits = (await h.client.json<unknown[]>('GET', '/v1/audit?limit=10000')).length;
    const none = await h.run(['ps'], { GPUSHARE_HOST: url });
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/needs "Authorization: Bearer <token>" on TCP \[GS_ERR_UNAUTHENTICATED\]/);
    const wrong = await h.run(['run', '-d', '--gpus', '0', '--', 'true'], as('not-a-token'));
    expect(wrong.stderr).toMatch(/bearer token is not known to this daemon \[GS_ERR_UNAUTHENTICATED\]/);
    expect((await h.client.json<unknown[]>('GET', '/v1/audit?limit=10000')).length).toBe(audits);
  });

  it('maps tokens to tenants: a tenant sees and acts on its own tasks only; admins on all', async () => {
    const mine = (await h.run(['run', '-d', '--gpus', '0', '--', 'sleep', '30'], as('alice-secret'))).stdout.trim();
    expect(mine).toMatch(/^[0-9a-f]{12}$/);
    expect((await h.task(mine)).tenant).toBe('alice');
    const bobs = (await h.run(['run', '-d', '--gpus', '0', '--', 'sleep', '30'], as('bob-secret'))).stdout.trim();

    const alicePs = JSON.parse((await h.run(['ps', '--json'], as('alice-secret'))).stdout) as TaskBody[];
    expect(alicePs.map((t) => t.id)).toEqual([mine]);
    const peek = await h.run(['inspect', bobs], as('alice-secret'));
    expect(peek.stderr).toMatch(/no task .* \[GS_ERR_NOT_FOUND\]/);
    const kill = await h.run(['kill', bobs], as('alice-secret'));
    expect(kill.status).toBe(1);
    expect((await h.task(bobs)).state).toBe('running');
    const forBob = await h.run(['run', '-d', '--tenant', 'bob', '--gpus', '0', '--', 'true'], as('alice-secret'));
    expect(forBob.stderr).toMatch(/tenant "alice" may not submit for tenant "bob" \[GS_ERR_FORBIDDEN\]/);

    // GPUs: alice sees bob's slice and its size, not whose it is.
    const bobsSlice = (await h.run(['run', '-d', '--mem', '3Gi', '--', 'sleep', '30'], as('bob-secret'))).stdout.trim();
    await h.waitFor(bobsSlice, (t) => t.state === 'running');
    type Slice = { taskId: string | null; tenant: string | null; memoryBytes: number };
    const seenByAlice = (await tcp('alice-secret').json<{ gpus: { slices: Slice[] }[] }>('GET', '/v1/gpus')).gpus[0]?.slices ?? [];
    expect(seenByAlice).toContainEqual(expect.objectContaining({ taskId: null, tenant: null, memoryBytes: 3 * 2 ** 30 }));
    const seenByBob = (await tcp('bob-secret').json<{ gpus: { slices: Slice[] }[] }>('GET', '/v1/gpus')).gpus[0]?.slices ?? [];
    expect(seenByBob).toContainEqual(expect.objectContaining({ taskId: bobsSlice, tenant: 'bob' }));
    expect((await h.run(['gpus'], as('alice-secret'))).stdout).toMatch(/^\s+\(another tenant\)\s+-\s+-\s+3 GiB/m);
    expect((await h.run(['kill', bobsSlice], as('bob-secret'))).status).toBe(0);
    await h.waitFor(bobsSlice);

    // Events: a tenant's own tasks only.
    const events = await tcp('alice-secret').json<{ taskId: string | null }[]>('GET', '/v1/events?limit=10000');
    expect(events.length).toBeGreaterThan(0);
    expect(new Set(events.map((e) => e.taskId))).toEqual(new Set([mine]));

    // Admin-only calls.
    const create = await h.run(['tenant', 'create', 'evil', '--gpus', '8'], as('alice-secret'));
    expect(create.stderr).toMatch(/creating a tenant needs the admin role; tenant "alice" has the user role \[GS_ERR_FORBIDDEN\]/);
    expect((await h.run(['audit'], as('alice-secret'))).stderr).toMatch(/GS_ERR_FORBIDDEN/);
    const tenantsSeen = await tcp('alice-secret').json<TenantBody[]>('GET', '/v1/tenants');
    expect(tenantsSeen.map((t) => t.name)).toEqual(['alice']);

    // The admin token sees everything and may kill anyone's task.
    const adminPs = JSON.parse((await h.run(['ps', '--json'], as('ops-secret'))).stdout) as TaskBody[];
    expect(adminPs.map((t) => t.id)).toEqual(expect.arrayContaining([mine, bobs]));
    expect((await h.run(['kill', mine, bobs], as('ops-secret'))).status).toBe(0);
    await h.waitFor(mine);
    await h.waitFor(bobs);
    expect((await h.run(['tenant', 'create', 'by-ops', '--gpus', '1'], as('ops-secret'))).status).toBe(0);

    const audit = JSON.parse((await h.run(['audit', '--json'], as('ops-secret'))).stdout) as AuditRecordBody[];
    const byAlice = audit.filter((a) => a.actor.startsWith('tenant:alice/token:')).map((a) => [a.action, a.target, a.result]);
    expect(byAlice).toEqual([
      ['task.submit', mine, 'ok'],
      ['task.kill', bobs, 'GS_ERR_NOT_FOUND'],
      ['task.submit', null, 'GS_ERR_FORBIDDEN'],
      ['tenant.create', 'evil', 'GS_ERR_FORBIDDEN'],
    ]);
    expect(audit.filter((a) => a.actor.startsWith('tenant:ops/token:')).map((a) => [a.action, a.target, a.result, a.role])).toEqual([
      ['task.kill', mine, 'ok', 'admin'],
      ['task.kill', bobs, 'ok', 'admin'],
      ['tenant.create', 'by-ops', 'ok', 'admin'],
    ]);
    expect(audit.every((a) => typeof a.at === 'number' && a.at > 0)).toBe(true);
  });

  it("does not name another tenant's task in why a task waits", async () => {
    const big = (await h.run(['run', '-d', '--mem', '60Gi', '--', 'sleep', '30'], as('ops-secret'))).stdout.trim();
    await h.waitFor(big, (t) => t.state === 'running');
    const bobsHead = (await h.run(['run', '-d', '--mem', '50Gi', '--', 'true'], as('bob-secret'))).stdout.trim();
    const alices = (await h.run(['run', '-d', '--mem', '1Gi', '--', 'true'], as('alice-secret'))).stdout.trim();
    expect((await h.task(alices)).waiting).toMatchObject({ kind: 'behind', taskId: bobsHead });
    const hidden = { kind: 'behind', taskId: null, text: "queued behind another tenant's task, which does not fit yet (no task jumps the queue)" };
    expect((await tcp('alice-secret').json<TaskBody>('GET', `/v1/tasks/${alices}`)).waiting).toEqual(hidden);
    for (const path of ['/v1/tasks', '/v1/tasks?all=1']) {
      expect((await tcp('alice-secret').json<TaskBody[]>('GET', path)).find((t) => t.id === alices)?.waiting).toEqual(hidden);
    }
    const ps = (await h.run(['ps'], as('alice-secret'))).stdout;
    expect(ps).toMatch(new RegExp(`^${alices}\\s+queued\\b.*\\sbehind other\\s+true$`, 'm'));
    expect(ps).not.toContain(bobsHead.slice(0, 6));
    // Bob sees his own task named, and so does an admin.
    expect((await tcp('ops-secret').json<TaskBody>('GET', `/v1/tasks/${alices}`)).waiting).toMatchObject({ taskId: bobsHead });
    // The queued ones first: killing the running one first would let them start and end before their kill.
    expect((await h.run(['kill', alices, bobsHead, big], as('ops-secret'))).status).toBe(0);
    for (const id of [alices, bobsHead, big]) await h.waitFor(id);
  });

  it('gpushare token create / list / revoke: a made token works until it is revoked, and expires', async () => {
    const made = await h.run(['token', 'create', '--tenant', 'alice', '--expires', '1h']);
    expect(made.status, made.stderr).toBe(0);
    const id = /^token ([0-9a-f]{12}) for tenant alice \(user, expires \d{4}-/.exec(made.stdout)?.[1] as string;
    const secret = /^secret .*: (gs_\S+)$/m.exec(made.stdout)?.[1] as string;
    expect((await h.run(['ps'], as(secret))).status).toBe(0);
    const list = (await h.run(['token', 'list'])).stdout;
    expect(list).toMatch(new RegExp(`^${id}\\s+alice\\s+user\\s+api\\s+active\\s+\\d{4}-\\d\\d-\\d\\dT\\S+Z\\s+500$`, 'm'));
    expect(list).not.toContain(secret);
    expect((await h.run(['token', 'revoke', id.slice(0, 8)])).stdout).toBe(`${id} revoked\n`);
    const refused = await h.run(['ps'], as(secret));
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain('the bearer token was revoked');
    expect((await h.run(['token', 'create', '--tenant', 'alice', '--expires', 'soon'])).stderr).toMatch(/"soon" is not a length of time/);
  });
});
