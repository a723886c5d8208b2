/** The CLI's list habits against a real daemon: ps -q/--filter/-o/--format, rm, prune, logs --tail/--since/-t, top -n/-o. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness } from './harness.js';

const h = new Harness();
let exited = '';
let failed = '';
let running = '';

beforeAll(async () => {
  await h.start();
  exited = await h.detach(['--gpus', '0', '--', 'sh', '-c', 'for i in 1 2 3 4 5; do echo out $i; echo err $i >&2; done']);
  failed = await h.detach(['--gpus', '0', '--', 'sh', '-c', 'exit 3']);
  running = await h.detach(['--gpus', '0', '--', 'sleep', '60']);
  await h.waitFor(exited);
  await h.waitFor(failed);
  await h.waitFor(running, (t) => t.state === 'running');
});
afterAll(async () => {
  await h.cleanup();
});

const lines = (text: string): string[] => text.split('\n').filter((l) => l !== '');

describe('ps', () => {
  it('-q prints ids only; -a adds the finished ones', async () => {
    expect(lines((await h.run(['ps', '-q'])).stdout)).toEqual([running]);
    expect(lines((await h.run(['ps', '-a', '-q'])).stdout).sort()).toEqual([exited, failed, running].sort());
  });

  it('--filter: states without -a, names, ids; one key\'s values are alternatives, keys must all match', async () => {
    expect(lines((await h.run(['ps', '-q', '--filter', 'state=exited'])).stdout).sort()).toEqual([exited, failed].sort());
    expect(lines((await h.run(['ps', '-q', '--filter', 'status=running', '--filter', 'state=exited'])).stdout).sort()).toEqual([exited, failed, running].sort());
    expect(lines((await h.run(['ps', '-a', '-q', '--filter', 'name=exit 3'])).stdout)).toEqual([failed]);
    expect(lines((await h.run(['ps', '-a', '-q', '--filter', `id=${running.slice(0, 6)}`, '--filter', 'state=running'])).stdout)).toEqual([running]);
    expect((await h.run(['ps', '-a', '-q', '--filter', 'tenant=nobody'])).stdout).toBe('');
  });

  it.each([
    [['--filter', 'colour=red'], /"colour" is not a filter; expected key=value with one of id, state, status, tenant, name/],
    [['--filter', 'state=sleepy'], /"sleepy" is not a task state; expected one of queued, starting, running/],
    [['--filter', 'state'], /"state": expected state=VALUE/],
    [['-q', '-o', 'json'], /-q prints ids only; it cannot be combined with -o, --json or --format/],
  ])('refuses %j with exit 2', async (args, message) => {
    const r = await h.run(['ps', ...args]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stdout).toBe('');
  });

  it('-o json (and --json), -o yaml, -o name, -o wide, --no-headers, --format', async () => {
    const json = JSON.parse((await h.run(['ps', '-o', 'json'])).stdout) as TaskBody[];
    expect(json.map((t) => t.id)).toEqual([running]);
    expect((await h.run(['ps', '--json'])).stdout).toBe((await h.run(['ps', '-o', 'json'])).stdout);
    expect((await h.run(['ps', '-o', 'yaml'])).stdout).toMatch(new RegExp(`^- id: ${running}\\n {2}seq: \\d+\\n {2}state: running\\n`));
    expect((await h.run(['ps', '-o', 'name'])).stdout).toBe(`task/${running}\n`);
    const wide = (await h.run(['ps', '-o', 'wide'])).stdout;
    expect(wide).toMatch(/^ID\s+STATE\s+PRIO\s+GPUS\s+MEM\/GPU\s+COMPUTE\s+PID\s+AGE\s+WAITING\s+TENANT\s+SUBMITTED\s+COMMAND$/m);
    expect(wide).toMatch(new RegExp(`^${running}\\s+running\\s.*\\s\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\s+sleep 60$`, 'm'));
    const bare = (await h.run(['ps', '--no-headers'])).stdout;
    expect(lines(bare)).toHaveLength(1);
    expect(bare).toMatch(new RegExp(`^${running}\\s+running`));
    expect((await h.run(['ps', '-a', '--filter', 'state=exited', '--format', '{{.ID}} {{.State}} {{.ExitCode}}'])).stdout.split('\n').sort()).toEqual(['', `${exited} exited 0`, `${failed} exited 3`].sort());
    expect((await h.run(['ps', '--format', 'table {{.ID}}\\t{{json .Command}}'])).stdout).toBe(`ID            COMMAND\n${running}  ["sleep","60"]\n`);
    expect((await h.run(['ps', '--no-headers', '--filter', 'tenant=nobody'])).stdout).toBe('');
  });
});

describe('inspect -o / --format', () => {
  it('prints one field, or YAML', async () => {
    expect((await h.run(['inspect', failed, '--format', '{{.State}} {{.ExitCode}} {{json .Command}}'])).stdout).toBe('exited 3 ["sh","-c","exit 3"]\n');
    expect((await h.run(['inspect', failed, '-o', 'yaml'])).stdout).toMatch(new RegExp(`^id: ${failed}\\n`));
    expect(JSON.parse((await h.run(['inspect', failed])).stdout)).toMatchObject({ id: failed, exitCode: 3 });
  });
});

describe('logs', () => {
  it("--tail N: each stream's last N lines", async () => {
    const r = await h.run(['logs', '--tail', '2', exited]);
    expect(r.stdout).toBe('out 4\nout 5\n');
    expect(r.stderr).toBe('err 4\nerr 5\n');
    expect((await h.run(['logs', '-n', '0', exited])).stdout).toBe('');
  });

  it('--since: all of a task started after it, none of one that ended before it, refused across it', async () => {
    expect((await h.run(['logs', '--since', '1h', exited])).stdout).toBe('out 1\nout 2\nout 3\nout 4\nout 5\n');
    const future = new Date(Date.now() + 3_600_000).toISOString();
    const none = await h.run(['logs', '--since', future, exited]);
    expect(none.status).toBe(0);
    expect(none.stdout).toBe('');
    const across = await h.run(['logs', '--since', new Date(Date.now() - 1).toISOString(), running]);
    expect(across.status).toBe(2);
    expect(across.stderr).toMatch(new RegExp(`--since: task ${running} ran from .* to now, across .*, and the log files keep no time per line .*; --tail N gives the last lines`));
  });

  it('-t is refused, saying why; a bad --since or --tail too', async () => {
    const t = await h.run(['logs', '-t', exited]);
    expect(t.status).toBe(2);
    expect(t.stderr).toMatch(/--timestamps: the log files keep no time per line/);
    expect((await h.run(['logs', '--since', 'yesterday', exited])).stderr).toMatch(/"yesterday" is not a time; expected a length of time back from now \(10m, 24h, 7d\) or an RFC 3339 time/);
    expect((await h.run(['logs', '--tail', '-3', exited])).stderr).toMatch(/is not a number of lines/);
  });
});

describe('top -n / -d / -o', () => {
  it('-n N prints N frames -d apart (not a terminal); -o json one snapshot, N with -n', async () => {
    const frames = await h.run(['top', '-n', '2', '-d', '0.1']);
    expect(frames.stdout.match(/^gpushare top - /gm)).toHaveLength(2);
    const one = JSON.parse((await h.run(['top', '-o', 'json'])).stdout) as { tasks: { id: string }[] };
    expect(one.tasks.map((t) => t.id)).toEqual([running]);
    const two = lines((await h.run(['top', '-o', 'json', '-n', '2', '-d', '0.1'])).stdout).map((l) => JSON.parse(l) as { at: number });
    expect(two).toHaveLength(2);
    expect((await h.run(['top', '-o', 'yaml'])).stdout).toMatch(/^at: \d+\ngpus:\n/);
  });

  // script(1) gives top a terminal (util-linux; skipped, visibly, where it is missing).
  it.skipIf(spawnSync('script', ['--version']).status !== 0)('-n N on a terminal: N frames, then the terminal back with the last frame on it', async () => {
    const cmd = `${process.execPath} ${REPO_ROOT}bin/gpushare.js top -n 2 -d 0.2`;
    const r = spawnSync('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, GPUSHARE_HOST: h.socket, TERM: 'xterm' }, encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.match(/q to quit/g)).toHaveLength(2);
    const after = r.stdout.split('\x1b[?1049l')[1] ?? '';
    expect(after).toMatch(/gpushare top - .* - 1 running, 0 queued/);
  });

  it('a fractional -n is still the old interval, said on stderr; a bad count is refused', async () => {
    const old = await h.run(['top', '-n', '0.5']);
    expect(old.status).toBe(0);
    expect(old.stderr).toMatch(/-n 0.5 read as seconds between refreshes; that is -d now/);
    expect((await h.run(['top', '-n', '2.5'])).stderr).toMatch(/"2.5" is not a number of frames/);
  });
});

describe('rm and prune', () => {
  it('rm removes finished tasks (record, logs, directory); a live one is refused unless -f; the others still go', async () => {
    const a = await h.detach(['--gpus', '0', '--', 'true']);
    const live = await h.detach(['--gpus', '0', '--', 'sleep', '60']);
    await h.waitFor(a);
    const dir = join(h.stateDir, 'tasks', a);
    expect(existsSync(dir)).toBe(true);
    const r = await h.run(['rm', a.slice(0, 8), live]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${a}\n`);
    expect(r.stderr).toMatch(new RegExp(`^gpushare: ${live}: task ${live} is (starting|running); only a finished task can be removed \\(kill it first, or gpushare rm -f\\) \\[GS_ERR_CONFLICT\\]$`, 'm'));
    expect((await h.run(['inspect', a])).status).toBe(1);
    for (let i = 0; i < 100 && existsSync(dir); i++) await new Promise((res) => setTimeout(res, 20));
    expect(existsSync(dir)).toBe(false);
    const forced = await h.run(['rm', '-f', live]);
    expect(forced.status).toBe(0);
    expect(forced.stdout).toBe(`${live}\n`);
    expect((await h.run(['inspect', live])).stderr).toMatch(/GS_ERR_NOT_FOUND/);
  });

  it('prune asks first (no answer: nothing removed), --dry-run says what would go, -f removes and says what was freed', async () => {
    const old = await h.detach(['--gpus', '0', '--', 'sh', '-c', 'echo some output']);
    await h.waitFor(old);
    const unanswered = await h.run(['prune']);
    expect(unanswered.status).toBe(1);
    expect(unanswered.stderr).toMatch(/This removes \d+ finished tasks \(.*B\): their records, logs and directories. Are you sure\? \[y\/N\] Nothing removed./);
    expect((await h.task(old)).id).toBe(old);
    const dry = await h.run(['prune', '--dry-run']);
    expect(dry.stdout).toMatch(new RegExp(`^Would remove:\\n(.*\\n)*${old}\\n(.*\\n)*\\nTotal: .*B\\n$`));
    expect((await h.run(['prune', '-f', '--until', '1h'])).stdout).toBe('No finished tasks to remove.\n\nTotal freed: 0 B\n');
    const yes = spawnSync(process.execPath, [`${REPO_ROOT}bin/gpushare.js`, 'prune'], { env: { ...process.env, GPUSHARE_HOST: h.socket }, input: 'y\n', encoding: 'utf8' });
    expect(yes.status).toBe(0);
    expect(yes.stdout).toMatch(new RegExp(`^Removed tasks:\\n(.*\\n)*${old}\\n(.*\\n)*\\nTotal freed: .*B\\n$`));
    expect(yes.stdout).toContain(exited);
    expect(yes.stdout).not.toContain(running);
    expect(lines((await h.run(['ps', '-a', '-q'])).stdout)).toEqual([running]);
  });
});
