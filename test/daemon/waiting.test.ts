/**
 * Why a queued task waits, end to end: the daemon's queue pass sets `waiting` on the task's wire
 * record (per GPU, the scheduler filter that refused it; its tenant's quota; the task ahead of
 * it), `gpushare ps` shows it in a column and `gpushare inspect` in full.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { Harness } from './harness.js';

const GiB = 2 ** 30;
const h = new Harness();

beforeAll(async () => {
  await h.start(['--preemption', 'off']);
});
afterAll(async () => {
  await h.cleanup();
});

describe('waiting', () => {
  it('says per GPU which filter refused the head, that the task behind it waits behind it, and which quota holds a task back', async () => {
    const running = await h.detach(['--mem', '60Gi', '--', 'sleep', '30']);
    await h.waitFor(running, (t) => t.state === 'running');
    expect((await h.task(running)).waiting).toBeNull();
    expect((await h.run(['tenant', 'create', 'capped', '--mem', '10Gi'])).status).toBe(0);
    const capped = await h.detach(['--tenant', 'capped', '--mem', '10Gi', '--', 'sleep', '30']);
    await h.waitFor(capped, (t) => t.state === 'running');
    // Ahead of the head in the queue: held back by its quota alone, it holds up nobody.
    const over = await h.detach(['--tenant', 'capped', '--mem', '5Gi', '--', 'true']);
    const head = await h.detach(['--mem', '50Gi', '--', 'true']);
    const small = await h.detach(['--mem', '1Gi', '--', 'true']);

    expect((await h.task(head)).waiting).toEqual({
      kind: 'noRoom',
      preemption: 'off',
      gpus: [{ gpu: 0, reason: 'insufficientGpuMemory', text: expect.stringMatching(/^GPU 0 has 9\.\d GiB free, 50 GiB asked$/) as unknown }],
      text: expect.stringMatching(/^no node can take it:\n {2}local: 0 of the 1 GPU\(s\) asked can take it: GPU 0 has 9\.\d GiB free, 50 GiB asked\n\(preemption is off\)$/),
    });
    expect((await h.task(small)).waiting).toMatchObject({ kind: 'behind', taskId: head });
    expect((await h.task(over)).waiting).toMatchObject({ kind: 'quota', tenant: 'capped', resource: 'memoryBytes', requested: 5 * GiB, remaining: 0 });

    const ps = (await h.run(['ps'])).stdout;
    expect(ps).toMatch(/^ID\s+STATE\s+PRIO\s+GPUS\s+MEM\/GPU\s+COMPUTE\s+PID\s+AGE\s+WAITING\s+COMMAND$/m);
    expect(ps).toMatch(new RegExp(`^${head}\\s+queued\\b.*\\sGPU 0 memory\\s+true$`, 'm'));
    expect(ps).toMatch(new RegExp(`^${small}\\s+queued\\b.*\\sbehind ${head.slice(0, 6)}\\s+true$`, 'm'));
    expect(ps).toMatch(new RegExp(`^${over}\\s+queued\\b.*\\squota: memory\\s+true$`, 'm'));
    expect(ps).toMatch(new RegExp(`^${running}\\s+running\\b.*\\s-\\s+sleep 30$`, 'm'));

    const inspected = JSON.parse((await h.run(['inspect', small])).stdout) as TaskBody;
    expect(inspected.waiting).toEqual({ kind: 'behind', taskId: head, text: `queued behind task ${head}, which does not fit yet (no task jumps the queue)` });

    // Room returns: the head starts, and nothing waits any more.
    await h.run(['kill', running]);
    await h.waitFor(running);
    expect(await h.waitFor(head)).toMatchObject({ state: 'exited', waiting: null });
    expect(await h.waitFor(small)).toMatchObject({ state: 'exited', waiting: null });
    await h.run(['kill', capped]);
    expect(await h.waitFor(over)).toMatchObject({ state: 'exited', waiting: null });
  });
});
