import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findNativePaths, readExitStatus } from './launcher.js';

/** gpushare-exec on its own: what it records for each way a command can end. */
describe('gpushare-exec', () => {
  const { exec } = findNativePaths();
  const dir = mkdtempSync(join(tmpdir(), 'gpushare-exec-'));
  let n = 0;
  const run = (args: string[], env: Record<string, string> = {}) => {
    const status = join(dir, `status-${n++}`);
    // cwd /: a user the wrapper drops to may not enter the checkout (under /root, say).
    const r = spawnSync(exec, [status, '--', ...args], { encoding: 'utf8', cwd: '/', env: { PATH: process.env['PATH'] ?? '', ...env } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, status: readExitStatus(status), file: status };
  };

  it.each([
    [['sh', '-c', 'exit 0'], { kind: 'exit', code: 0 }, 0],
    [['sh', '-c', 'exit 3'], { kind: 'exit', code: 3 }, 3],
    [['sh', '-c', 'kill -TERM $$'], { kind: 'signal', signal: 15 }, 143],
    [['sh', '-c', 'kill -KILL $$'], { kind: 'signal', signal: 9 }, 137],
    [['/no/such/program'], { kind: 'error', errno: 2 }, 127],
    [['/'], { kind: 'error', errno: 13 }, 126],
  ])('%j -> %j, exits %d', (args, status, code) => {
    const r = run(args);
    expect(r.status).toEqual(status);
    expect(r.code).toBe(code);
    expect(existsSync(`${r.file}.tmp`)).toBe(false);
  });

  it('puts the preload into the command only, in front of its own', () => {
    const r = run(['sh', '-c', 'echo "$LD_PRELOAD|${GPUSHARE_EXEC_PRELOAD-unset}"'], { GPUSHARE_EXEC_PRELOAD: '/nonexistent/ours.so', LD_PRELOAD: '/nonexistent/theirs.so' });
    expect(r.stdout.trim()).toBe('/nonexistent/ours.so:/nonexistent/theirs.so|unset');
  });

  it.each([
    ['root', { GPUSHARE_EXEC_UID: '0', GPUSHARE_EXEC_GID: '1' }, /GPUSHARE_EXEC_UID is not a user id above 0: 0/],
    ['no group', { GPUSHARE_EXEC_UID: '1000' }, /GPUSHARE_EXEC_GID is not a group id above 0: \(unset\)/],
    ['a malformed id', { GPUSHARE_EXEC_UID: '12x', GPUSHARE_EXEC_GID: '1' }, /GPUSHARE_EXEC_UID is not a user id/],
    ['a malformed group list', { GPUSHARE_EXEC_UID: '1000', GPUSHARE_EXEC_GID: '1000', GPUSHARE_EXEC_GROUPS: '5,,6' }, /GPUSHARE_EXEC_GROUPS is not a list of group ids/],
    ['a cgroup that does not exist', { GPUSHARE_EXEC_CGROUP: '/nonexistent/cgroup' }, /sandbox: cannot open \/nonexistent\/cgroup\/cgroup.procs/],
  ])('never runs the command with a sandbox it could not enter: %s', (_name, env, message) => {
    const r = run(['sh', '-c', 'echo ran'], env);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(message);
    expect(r.status?.kind).toBe('error');
    expect([126, 127]).toContain(r.code); // the errno decides, as for a failed exec (ENOENT: 127)
  });

  it.skipIf(process.getuid?.() !== 0)('drops to the user asked, with no new privileges and a PATH it can search (root only)', () => {
    const r = run(['sh', '-c', 'echo "$(id -u) $(id -g) $(id -G) $PATH"; grep NoNewPrivs /proc/self/status; env | grep -c GPUSHARE_EXEC_ || true'], {
      GPUSHARE_EXEC_UID: '65534',
      GPUSHARE_EXEC_GID: '65534',
      GPUSHARE_EXEC_GROUPS: '65533',
      PATH: `${dir}/private:/usr/bin:/bin`,
    });
    const [ids, nnp, leaked] = r.stdout.trim().split('\n');
    expect(ids).toBe('65534 65534 65534 65533 /usr/bin:/bin');
    expect(nnp).toMatch(/NoNewPrivs:\s+1/);
    expect(leaked).toBe('0');
    expect(r.status).toEqual({ kind: 'exit', code: 0 });
  });

  it('refuses a call without its arguments', () => {
    const r = spawnSync(exec, ['only-status'], { encoding: 'utf8' });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/usage: gpushare-exec STATUS_FILE -- COMMAND/);
  });

  it('reads only whole, well-formed status files', () => {
    expect(readExitStatus(join(dir, 'absent'))).toBeNull();
  });
});
