import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody, TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, sleep } from './harness.js';

const GiB = 2 ** 30;
const h = new Harness();

beforeAll(async () => {
  await h.start();
});
afterAll(async () => {
  await h.cleanup();
});

/** Raw HTTP over the socket, for requests the CLI would never send. */
async function post(path: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; body: ErrorBody }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: h.socket, path, method: 'POST', headers: { 'content-type': contentType } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as ErrorBody }));
    });
    req.on('error', reject);
    req.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
}

describe('gpushare run (foreground)', () => {
  it("sets what --cores is a share of: throughput by default, gpu or time with --cores-accounting (the task's own value never wins)", async () => {
    const show = ['--', 'sh', '-c', 'echo "$GPUSHARE_COMPUTE_ACCOUNTING|${GPUSHARE_COMPUTE_CLOCK-unset}"'];
    const byDefault = await h.run(['run', '--cores', '30', '-e', 'GPUSHARE_COMPUTE_CLOCK=9999', ...show]);
    expect(byDefault.stdout.trim()).toBe('throughput|unset');
    const time = await h.run(['run', '--cores', '30', '--cores-accounting', 'time', '-e', 'GPUSHARE_COMPUTE_ACCOUNTING=throughput', ...show]);
    expect(time.stdout.trim()).toBe('time|unset');
    const gpu = await h.run(['run', '--cores', '30', '--cores-accounting', 'gpu', ...show]);
    expect(gpu.stdout.trim()).toBe('gpu|unset');
    const all = await h.client.json<{ command: string[]; request: { computeAccounting?: string } }[]>('GET', '/v1/tasks?all=1');
    const shown = all.filter((t) => t.command.join(' ') === show.slice(1).join(' ')).map((t) => t.request.computeAccounting ?? 'none');
    expect(shown.sort()).toEqual(['gpu', 'none', 'time']);
  });

  it('gives the task its slice in the environment and the library preloaded', async () => {
    const r = await h.run(['run', '--mem', '8Gi', '--cores', '30', '--', 'sh', '-c', 'echo "$GPUSHARE_MEMORY_LIMIT|$GPUSHARE_COMPUTE_LIMIT|$CUDA_VISIBLE_DEVICES|$GPUSHARE_REGION|$LD_PRELOAD|$GPUSHARE_PRIORITY"']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const [mem, compute, devices, region, preload, priority] = r.stdout.trim().split('|');
    expect(mem).toBe(String(8 * GiB));
    expect(compute).toBe('30');
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    expect(devices).toBe(gpus.gpus[0]?.uuid);
    expect(region).toMatch(new RegExp(`^${h.stateDir}/tasks/[0-9a-f]{12}/region$`));
    expect(preload).toBe(`${REPO_ROOT}build/native/libgpushare.so`);
    expect(existsSync(preload ?? '')).toBe(true);
    expect(priority).toBe('normal');
  });

  it('holds the task to its --mem through the real library (fake CUDA driver, the simulated GPU)', async () => {
    // The fake driver and NVML describe the simulated GPU, so CUDA_VISIBLE_DEVICES (its UUID) selects it.
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    const uuid = gpus.gpus[0]?.uuid ?? '';
    const program = `${REPO_ROOT}build/native/shim/tests/shim_test_release`;
    expect(existsSync(program), `${program} is built by \`npm run test:native\`, which npm test runs first`).toBe(true);
    const device = JSON.stringify({ devices: [{ uuid }] });
    const r = await h.run([
      'run', '--mem', '64Mi',
      '-e', `LD_LIBRARY_PATH=${REPO_ROOT}build/native/fake:${REPO_ROOT}build/native/shim/tests`,
      '-e', `GPUSHARE_FAKE_NVML=${device}`,
      '-e', `GPUSHARE_FAKE_CUDA=${JSON.stringify({ contextBytes: 4 * 2 ** 20, devices: [{ uuid }] })}`,
      '--', program, 'contract', 'direct',
    ]);
    // The contract: 4 MiB context + 60 x 1 MiB fit in 64 MiB, the 61st is CUDA_ERROR_OUT_OF_MEMORY.
    expect(r.stderr).toMatch(/^gpushare: out of memory on device 0: asked 1 MiB, limit 64 MiB/m);
    expect(r.stdout).toMatch(/contract direct: \d+ checks, 0 failed/);
    expect(r.status).toBe(0);
  });

  it('exits with the task exit code and keeps stdout and stderr apart', async () => {
    const r = await h.run(['run', '--gpus', '0', '--', 'sh', '-c', 'echo out; echo err >&2; exit 7']);
    expect(r.status).toBe(7);
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
  });

  it('forwards Ctrl-C to the task', async () => {
    const run = h.cli(['run', '--gpus', '0', '--', 'sh', '-c', 'trap "echo got INT; exit 42" INT; echo ready; while :; do sleep 0.05; done']);
    let out = '';
    run.child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    while (!out.includes('ready')) await sleep(20);
    run.child.kill('SIGINT');
    const r = await run.done;
    expect(r.status).toBe(42);
    expect(r.stdout).toContain('got INT');
  });

  it('reports a command that cannot be started', async () => {
    const r = await h.run(['run', '--gpus', '0', '--', 'no-such-program-gpushare']);
    expect(r.status).toBe(127);
    expect(r.stderr).toMatch(/cannot run "no-such-program-gpushare": no such file or directory \(ENOENT\)/);
  });
});

describe('queue', () => {
  it('queues what does not fit, starts it when room frees, highest priority first', async () => {
    const blocker = await h.detach(['--mem', '60Gi', '--', 'sleep', '30']);
    await h.waitFor(blocker, (t) => t.state === 'running');
    const low = await h.detach(['--mem', '50Gi', '--priority', 'low', '--', 'sleep', '30']);
    const high = await h.detach(['--mem', '50Gi', '--priority', 'high', '--', 'sleep', '30']);
    expect((await h.task(low)).state).toBe('queued');
    expect((await h.task(high)).state).toBe('queued');

    const ps = JSON.parse((await h.run(['ps', '--json'])).stdout) as TaskBody[];
    expect(ps.map((t) => [t.id, t.state])).toEqual(expect.arrayContaining([[blocker, 'running'], [low, 'queued'], [high, 'queued']]));

    await h.run(['kill', blocker]);
    const started = await h.waitFor(high, (t) => t.state === 'running');
    expect(started.gpus?.[0]?.memoryBytes).toBe(50 * GiB);
    expect((await h.task(low)).state).toBe('queued'); // 50 + 50 GiB do not fit on 80 GB

    await h.run(['kill', high]);
    await h.waitFor(low, (t) => t.state === 'running');
    const killed = await h.waitFor(high);
    expect(killed).toMatchObject({ state: 'killed', signal: 'SIGTERM', killRequested: true });
    await h.run(['kill', low]);
    await h.waitFor(low);
  });

  it('cancelling the task at the head of the queue lets the ones behind it start', async () => {
    const blocker = await h.detach(['--mem', '60Gi', '--', 'sleep', '30']);
    await h.waitFor(blocker, (t) => t.state === 'running');
    const head = await h.detach(['--mem', '50Gi', '--priority', 'high', '--', 'sleep', '30']);
    const small = await h.detach(['--mem', '10Gi', '--', 'sleep', '30']);
    expect((await h.task(small)).state).toBe('queued'); // it fits, but does not jump the head (no backfill)
    await h.run(['kill', head]);
    expect(await h.waitFor(small, (t) => t.state === 'running')).toMatchObject({ gpus: [expect.objectContaining({ memoryBytes: 10 * GiB })] });
    await h.run(['kill', blocker, small]);
    await h.waitFor(blocker);
    await h.waitFor(small);
  });

  it('starts queued tasks by priority, then by arrival', async () => {
    const blocker = await h.detach(['--isolation', 'exclusive', '--', 'sleep', '30']);
    await h.waitFor(blocker, (t) => t.state === 'running');
    // Each takes the whole GPU, so they start one at a time, in queue order.
    const submit = (priority: string): Promise<string> => h.detach(['--isolation', 'exclusive', '--priority', priority, '--', 'sleep', '0.05']);
    const n1 = await submit('normal');
    const n2 = await submit('normal');
    const h1 = await submit('high');
    const n3 = await submit('500');
    const l1 = await submit('low');
    const h2 = await submit('high');
    const p7 = await submit('700');
    await h.run(['kill', blocker]);
    const ids = [n1, n2, h1, n3, l1, h2, p7];
    await Promise.all(ids.map((id) => h.waitFor(id, undefined, 20_000)));
    const events = await h.client.json<{ type: string; taskId: string | null }[]>('GET', '/v1/events?limit=10000');
    const started = events.filter((e) => e.type === 'task.started' && e.taskId !== null && ids.includes(e.taskId)).map((e) => e.taskId);
    expect(started).toEqual([h1, h2, p7, n1, n2, n3, l1]);
  });

  it('kills with SIGKILL a task that ignores SIGTERM, after the grace period', async () => {
    const id = await h.detach(['--gpus', '0', '--', 'sh', '-c', 'trap "" TERM; echo ready; while :; do sleep 0.05; done']);
    await h.waitFor(id, (t) => t.state === 'running');
    while (!(await h.run(['logs', id])).stdout.includes('ready')) await sleep(20);
    expect((await h.run(['kill', '--grace', '0.3', id])).status).toBe(0);
    await sleep(150);
    expect((await h.task(id)).state).toBe('running'); // SIGTERM ignored, grace not over
    expect(await h.waitFor(id)).toMatchObject({ state: 'killed', signal: 'SIGKILL', exitCode: null });
  });

  it('cancels a queued task without starting it', async () => {
    const blocker = await h.detach(['--isolation', 'exclusive', '--', 'sleep', '30']);
    await h.waitFor(blocker, (t) => t.state === 'running');
    const queued = await h.detach(['--mem', '1Gi', '--', 'sleep', '30']);
    const k = await h.run(['kill', queued.slice(0, 8)]); // a unique prefix is enough
    expect(k.status).toBe(0);
    expect(await h.task(queued)).toMatchObject({ state: 'killed', pid: null, message: 'cancelled while queued' });
    const again = await h.run(['kill', queued]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/already ended \(killed\) \[GS_ERR_CONFLICT\]/);
    await h.run(['kill', blocker]);
    await h.waitFor(blocker);
  });
});

describe('logs', () => {
  it('prints a finished task output, and follows a running one to its end', async () => {
    const id = await h.detach(['--gpus', '0', '--', 'sh', '-c', 'for i in 1 2 3; do echo line $i; sleep 0.1; done; echo oops >&2']);
    const follow = await h.run(['logs', '-f', id]);
    expect(follow.status).toBe(0);
    expect(follow.stdout).toBe('line 1\nline 2\nline 3\n');
    expect(follow.stderr).toBe('oops\n');
    const again = await h.run(['logs', id]);
    expect(again.stdout).toBe('line 1\nline 2\nline 3\n');
    const inspect = JSON.parse((await h.run(['inspect', id])).stdout) as TaskBody;
    expect(inspect).toMatchObject({ id, state: 'exited', exitCode: 0, command: ['sh', '-c', expect.any(String)] });
    expect(inspect.finishedAt).toBeGreaterThanOrEqual(inspect.startedAt ?? Infinity);
  });

  it('says which task does not exist', async () => {
    const r = await h.run(['logs', 'abcdef123456']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/no task "abcdef123456" \[GS_ERR_NOT_FOUND\]/);
  });
});

describe('bad requests', () => {
  const cases: { name: string; body: unknown; status: number; code: string; message: RegExp }[] = [
    { name: 'no command', body: { command: [] }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /command/ },
    { name: 'unknown field', body: { command: ['true'], memroy: '1Gi' }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /memroy/ },
    { name: 'ambiguous unit', body: { command: ['true'], memory: '4096m' }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /memory: .*ambiguous/ },
    { name: 'bad priority', body: { command: ['true'], priority: 'urgent' }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /priority: "urgent" is not a priority/ },
    { name: 'bad cores', body: { command: ['true'], compute: '130' }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /compute/ },
    { name: 'relative cwd', body: { command: ['true'], cwd: 'rel/dir' }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /cwd: "rel\/dir" is not an absolute path/ },
    { name: 'missing cwd', body: { command: ['true'], cwd: '/no/such/dir' }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /not an existing directory/ },
    { name: 'bad env name', body: { command: ['true'], env: { 'A-B': 'x' } }, status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /env/ },
    { name: 'too much memory', body: { command: ['true'], memory: '100Gi' }, status: 422, code: 'GS_ERR_UNSATISFIABLE', message: /100 GiB per GPU but the largest matching GPU \(H100-80GB\)/ },
    { name: 'too many GPUs', body: { command: ['true'], gpus: 2 }, status: 422, code: 'GS_ERR_UNSATISFIABLE', message: /2 GPUs but only 1/ },
    { name: 'absent model', body: { command: ['true'], models: { include: ['A100'] } }, status: 422, code: 'GS_ERR_UNSATISFIABLE', message: /models here: H100-80GB/ },
    { name: 'mig', body: { command: ['true'], isolation: 'mig', migProfile: '1g.10gb' }, status: 422, code: 'GS_ERR_UNSATISFIABLE', message: /mig is not supported/ },
    { name: 'malformed JSON', body: '{"command": [', status: 400, code: 'GS_ERR_INVALID_ARGUMENT', message: /JSON/ },
  ];

  it.each(cases)('$name: $status $code, nothing changed', async ({ body, status, code, message }) => {
    const before = await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1');
    const events = await h.client.json<unknown[]>('GET', '/v1/events');
    const r = await post('/v1/tasks', body);
    expect(r.status).toBe(status);
    expect(r.body.error.code).toBe(code);
    expect(r.body.error.message).toMatch(message);
    expect(await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1')).toEqual(before);
    expect(await h.client.json<unknown[]>('GET', '/v1/events')).toHaveLength(events.length);
  });

  it('a bad kill signal and an unknown endpoint are refused with codes', async () => {
    const id = await h.detach(['--gpus', '0', '--', 'true']);
    expect(await post(`/v1/tasks/${id}/kill`, { signal: 'SIGFOO' })).toMatchObject({ status: 400, body: { error: { code: 'GS_ERR_INVALID_ARGUMENT' } } });
    expect(await post('/v1/nothing', {})).toMatchObject({ status: 404, body: { error: { code: 'GS_ERR_NOT_FOUND' } } });
  });

  it("run exits 125 (its own failure, as docker's) on bad input, with the daemon message; other commands 2", async () => {
    const r = await h.run(['run', '--mem', '4096m', '--', 'true']);
    expect(r.status).toBe(125);
    expect((await h.run(['ps', '--timeout', 'soon'])).status).toBe(2);
    expect(r.stderr).toMatch(/memory: .*4096m.*\[GS_ERR_INVALID_ARGUMENT\]/);
  });
});

describe('many clients', () => {
  it('accepts concurrent submissions from many clients, each task once', async () => {
    const before = (await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1')).length;
    const api = Array.from({ length: 40 }, (_, i) =>
      h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sh', '-c', `echo ${i}`], gpus: 0, cwd: '/' }).then((t) => t.id),
    );
    const clis = Array.from({ length: 6 }, (_, i) => h.detach(['--mem', '1Gi', '--', 'sh', '-c', `echo cli ${i}`]));
    const ids = await Promise.all([...api, ...clis]);
    expect(new Set(ids).size).toBe(46);
    const ended = await Promise.all(ids.map((id) => h.waitFor(id)));
    expect(ended.every((t) => t.state === 'exited' && t.exitCode === 0)).toBe(true);
    expect((await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1')).length).toBe(before + 46);
    const seqs = ended.map((t) => t.seq);
    expect(new Set(seqs).size).toBe(46);
  });
});

describe('API surface', () => {
  it('serves an OpenAPI document generated from the schemas', async () => {
    const doc = await h.client.json<{ openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>('GET', '/openapi.json');
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Task', 'SubmitTask', 'Error', 'Gpu', 'Event']));
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/gpus', '/v1/tasks', '/v1/tasks/{id}', '/v1/tasks/{id}/logs', '/v1/tasks/{id}/kill', '/v1/events', '/v1/tenants', '/v1/tenants/{name}', '/v1/audit']));
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Tenant', 'CreateTenant', 'UpdateTenant', 'QuotaInput', 'AuditRecord']));
  });

  it('listens on a socket only its user can reach', () => {
    expect(statSync(h.socket).mode & 0o777).toBe(0o600);
    expect(statSync(h.stateDir).mode & 0o777).toBe(0o700);
  });

  it('lists GPUs with the slices placed on them', async () => {
    const id = await h.detach(['--mem', '2Gi', '--', 'sleep', '30']);
    await h.waitFor(id, (t) => t.state === 'running');
    const r = await h.client.json<{ backend: string; gpus: { slices: { taskId: string; memoryBytes: number }[] }[] }>('GET', '/v1/gpus');
    expect(r.backend).toBe('simulated');
    expect(r.gpus[0]?.slices).toContainEqual(expect.objectContaining({ taskId: id, memoryBytes: 2 * GiB, computeMilli: 0 }));
    await h.run(['kill', id]);
    await h.waitFor(id);
  });

  it('shows each slice with what its processes use, from the task region (gpus, top)', async () => {
    // region_fixture attaches two processes to the task's region with known usage and stays until stdin closes.
    const fixture = `${REPO_ROOT}build/native/region/region_fixture`;
    expect(existsSync(fixture), `${fixture} is built by \`npm run build:native\``).toBe(true);
    const id = await h.detach(['--mem', '3Gi', '--cores', '40', '--tenant', 'viewer', '--', 'sh', '-c', `sleep 30 | ${fixture} "$GPUSHARE_REGION"`]);
    await h.waitFor(id, (t) => t.state === 'running');
    type Slice = { taskId: string; tenant: string | null; memoryBytes: number; computeMilli: number; usedMemoryBytes: number | null; computeShare: number | null };
    let slice: Slice | undefined;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const r = await h.client.json<{ gpus: { slices: Slice[] }[] }>('GET', '/v1/gpus');
      slice = r.gpus[0]?.slices.find((s) => s.taskId === id);
      if (slice?.usedMemoryBytes) break;
      await sleep(100);
    }
    // Device 0 of the task: parent context 3000000 + alloc 1048576, child alloc 65536; the parent's share is 1/2.
    expect(slice).toEqual({ taskId: id, tenant: 'viewer', priority: 500, memoryBytes: 3 * GiB, computeMilli: 400, usedMemoryBytes: 4114112, computeShare: 0.5, smRange: null });

    const gpus = await h.run(['gpus']);
    expect(gpus.status).toBe(0);
    expect(gpus.stdout).toMatch(/^GPU\s+MODEL \/ TASK\s+TENANT\s+MEM USED\s+MEM RESERVED\s+COMPUTE\s+USAGE$/m);
    expect(gpus.stdout).toMatch(new RegExp(`^\\s+${id}\\s+viewer\\s+3\\.9 MiB\\s+3 GiB\\s+40%\\s+achieved 50%$`, 'm'));
    const json = JSON.parse((await h.run(['gpus', '--json'])).stdout) as { slices: Slice[] }[];
    expect(json[0]?.slices.find((s) => s.taskId === id)?.usedMemoryBytes).toBe(4114112);

    // Not a terminal: top prints one frame and exits.
    const top = await h.run(['top']);
    expect(top.status).toBe(0);
    expect(top.stdout).toMatch(/^gpushare top - \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC - .*api\.sock - 1 running, 0 queued$/m);
    expect(top.stdout).toContain(id);
    expect(top.stdout).toMatch(/^ID\s+STATE\s+PRIO/m);
    const topJson = JSON.parse((await h.run(['top', '--json'])).stdout) as { at: number; gpus: unknown[]; tasks: { id: string }[] };
    expect(topJson.tasks.map((t) => t.id)).toEqual([id]);
    expect(topJson.gpus).toHaveLength(1);
    await h.run(['kill', id]);
    await h.waitFor(id);
  });

  // script(1) is util-linux, present wherever the rest of these tests run; skipped (visibly) if not.
  it.skipIf(spawnSync('script', ['--version']).status !== 0)('top on a terminal: redraws in the alternate screen until q, then gives the terminal back', async () => {
    // script(1) gives top a pseudo-terminal; what is written to its stdin reaches top as keys.
    const cmd = `${process.execPath} ${REPO_ROOT}bin/gpushare.js top -d 0.2`;
    const { spawn } = await import('node:child_process');
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, GPUSHARE_HOST: h.socket, TERM: 'xterm' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    // Two frames: it redraws on its interval.
    while ((out.match(/q to quit/g) ?? []).length < 2 && Date.now() < deadline) await sleep(50);
    expect(out).toContain('\x1b[?1049h');
    expect(out).toMatch(/gpushare top - .* - \d+ running, \d+ queued/);
    child.stdin.write('q');
    const code = await Promise.race([exited, sleep(5000).then(() => 'timeout' as const)]);
    if (code === 'timeout') child.kill('SIGKILL');
    expect(code).toBe(0);
    expect(out).toContain('\x1b[?1049l'); // the terminal's own screen is back
  });

  it('streams events as they happen with follow=1', async () => {
    const { request } = await import('node:http');
    const last = (await h.client.json<{ seq: number }[]>('GET', '/v1/events?limit=10000')).at(-1)?.seq ?? 0;
    const seen: { type: string; taskId: string }[] = [];
    let id = '';
    await new Promise<void>((resolve, reject) => {
      const req = request({ socketPath: h.socket, path: `/v1/events?follow=1&since=${last}` }, (res) => {
        let rest = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          rest += chunk;
          const lines = rest.split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) seen.push(JSON.parse(line) as { type: string; taskId: string });
          check();
        });
      });
      const check = (): void => {
        if (id !== '' && seen.some((e) => e.type === 'task.ended' && e.taskId === id)) {
          req.destroy();
          resolve();
        }
      };
      req.on('error', reject);
      req.end();
      void h.detach(['--gpus', '0', '--', 'true']).then((x) => {
        id = x;
        check();
      });
    });
    expect(seen.filter((e) => e.taskId === id).map((e) => e.type)).toEqual(['task.submitted', 'task.started', 'task.ended']);
  });

  it('records every change as an event', async () => {
    const id = await h.detach(['--gpus', '0', '--', 'true']);
    await h.waitFor(id);
    const events = await h.client.json<{ type: string; taskId: string | null }[]>('GET', '/v1/events?limit=10000');
    expect(events.filter((e) => e.taskId === id).map((e) => e.type)).toEqual(['task.submitted', 'task.started', 'task.ended']);
  });
});
