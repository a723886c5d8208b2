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
    const r = spawnSync(exec, [status, '--', ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env } });
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

  it('refuses a call without its arguments', () => {
    const r = spawnSync(exec, ['only-status'], { encoding: 'utf8' });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/usage: gpushare-exec STATUS_FILE -- COMMAND/);
  });

  it('reads only whole, well-formed status files', () => {
    expect(readExitStatus(join(dir, 'absent'))).toBeNull();
  });
});
