import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EXIT_CLAIM_TAKEN, findNativePaths, readClaim, readExitStatus, wrapperEnvironment } from './launcher.js';

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

  it('passes no descriptor it inherited beyond stdin, stdout and stderr on to the command', () => {
    // fd 3 and 4: pipes the wrapper inherits (as from whoever started the daemon), not close-on-exec.
    // The shell tests them with builtins only: a pipeline of its own would hold pipe fds for a moment.
    const status = join(dir, `status-${n++}`);
    const r = spawnSync(exec, [status, '--', 'sh', '-c', 'for f in 3 4; do [ -e /proc/$$/fd/$f ] && echo "open $f"; done; echo done'], { encoding: 'utf8', cwd: '/', stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '' } });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('done');
  });

  it('puts the preload into the command only, in front of its own', () => {
    const r = run(['sh', '-c', 'echo "$LD_PRELOAD|${GPUSHARE_EXEC_PRELOAD-unset}"'], { GPUSHARE_EXEC_PRELOAD: '/nonexistent/ours.so', LD_PRELOAD: '/nonexistent/theirs.so' });
    expect(r.stdout.trim()).toBe('/nonexistent/ours.so:/nonexistent/theirs.so|unset');
  });

  it("never loads the task's LD_PRELOAD into the wrapper (root), only into the command", () => {
    // ld.so says so once per process it would preload into: the command alone, not gpushare-exec too.
    const r = run(['true'], wrapperEnvironment({ PATH: process.env['PATH'] ?? '', LD_PRELOAD: '/nonexistent/theirs.so' }, null));
    expect(r.code).toBe(0);
    expect(r.stderr.match(/nonexistent\/theirs\.so/g)).toHaveLength(1);
  });

  it("gives the command back the loader variables the wrapper got renamed, under their own names", () => {
    const env = wrapperEnvironment({ PATH: process.env['PATH'] ?? '', LD_LIBRARY_PATH: '/opt/lib', TZDIR: '/opt/tz', KEEP: '1' }, null);
    expect(Object.keys(env).filter((k) => k.startsWith('LD_') || k === 'TZDIR')).toEqual([]);
    const r = run(['sh', '-c', 'echo "$LD_LIBRARY_PATH|$TZDIR|$KEEP|$(env | grep -c ^GPUSHARE_EXEC_TASK_ENV_)"'], env);
    expect(r.stdout.trim()).toBe('/opt/lib|/opt/tz|1|0');
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

  it.skipIf(process.getuid?.() !== 0)("empties the task's own directory as its user once the command ends: the region kept, no link followed, nothing its user could not delete (root only)", () => {
    chmodSync(dir, 0o755); // mkdtemp's 0700 would keep the task's user out
    const own = join(dir, 'own-clean');
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep'), 'x');
    // Root's, inside the task's directory: root walking the tree could empty it, the user cannot.
    mkdirSync(join(own, 'roots'), { recursive: true });
    writeFileSync(join(own, 'roots', 'keep'), 'x');
    const script = [
      'cd "$GPUSHARE_TEST_OWN"',
      ': > region',
      'mkdir -p a/b && : > a/b/f && : > top',
      `ln -s ${outside} a/out && ln -s ${outside} out`,
      'echo "uid $(id -u)"',
    ].join(' && ');
    const r = run(['sh', '-c', script], { GPUSHARE_EXEC_UID: '65534', GPUSHARE_EXEC_GID: '65534', GPUSHARE_EXEC_OWN_DIR: own, GPUSHARE_TEST_OWN: own });
    expect(r.stdout.trim()).toBe('uid 65534');
    expect(r.status).toEqual({ kind: 'exit', code: 0 });
    expect(readdirSync(own).sort()).toEqual(['region', 'roots']);
    expect(readdirSync(join(own, 'roots'))).toEqual(['keep']);
    expect(readdirSync(outside)).toEqual(['keep']);
    // Without a user the wrapper leaves the directory alone (the daemon's own tasks keep their files where they are).
    const mine = join(dir, 'own-daemon');
    mkdirSync(mine);
    run(['sh', '-c', `: > ${mine}/f`], { GPUSHARE_EXEC_OWN_DIR: mine });
    expect(readdirSync(mine)).toEqual(['f']);
  });

  describe('compute boards (GPUSHARE_EXEC_BOARDS)', () => {
    const BOARD_BYTES = 4160; // gpushare_board.h GS_BOARD_FILE_SIZE
    it("makes the task's user's boards, brings a shrunk one back to size, refuses a link, and runs the command either way", () => {
      const boards = join(dir, 'boards');
      mkdirSync(boards);
      const [a, b, link] = [join(boards, 'a'), join(boards, 'b'), join(boards, 'link')] as const;
      writeFileSync(b, 'cut short'); // as its user may leave it
      chmodSync(b, 0o600);
      symlinkSync('/etc/passwd', link);
      const r = run(['sh', '-c', 'echo "ran ${GPUSHARE_EXEC_BOARDS-unset}"'], { GPUSHARE_EXEC_BOARDS: [a, b, link].join(':') });
      expect(r.stdout.trim()).toBe('ran unset');
      expect(r.status).toEqual({ kind: 'exit', code: 0 });
      for (const f of [a, b]) {
        const st = statSync(f);
        expect([st.size, st.mode & 0o777, st.uid]).toEqual([BOARD_BYTES, 0o644, process.getuid?.()]);
      }
      expect(readFileSync(b).subarray(0, 9).toString()).toBe('cut short'); // grown, never rewritten
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(r.stderr).toMatch(/gpushare-exec: cannot open the compute board .*\/link \(Too many levels of symbolic links\): compute is limited for this task alone/);
    });

    it.skipIf(process.getuid?.() !== 0)("gives them to the task's user, who can write and cut only its own (root only)", () => {
      chmodSync(dir, 0o755); // mkdtemp's 0700 would keep the task's user out of the boards' directory below
      const boards = join(dir, 'boards-root');
      mkdirSync(boards, { mode: 0o755 });
      const own = join(boards, 'own');
      const other = join(boards, 'other');
      writeFileSync(other, Buffer.alloc(BOARD_BYTES), { mode: 0o644 });
      const script = [`: > ${own} && echo "own cut"`, `(: > ${other}) 2>/dev/null && echo "other CUT" || echo "other refused"`, `touch ${boards}/new 2>/dev/null && echo "new MADE" || echo "new refused"`].join('; ');
      const r = run(['sh', '-c', script], { GPUSHARE_EXEC_UID: '65534', GPUSHARE_EXEC_GID: '65534', GPUSHARE_EXEC_BOARDS: own });
      expect(r.stdout.trim().split('\n')).toEqual(['own cut', 'other refused', 'new refused']);
      expect([statSync(own).uid, statSync(own).gid, statSync(other).size]).toEqual([65534, 65534, BOARD_BYTES]);
      truncateSync(own, 0);
    });
  });

  describe('compute grants (GPUSHARE_EXEC_GRANT)', () => {
    const GRANTS_BYTES = 4160; // gpushare_board.h GS_GRANTS_FILE_SIZE
    /** Grant entry i's owner (as two u32: nonce, pid), live, uid, share_ppm, priority, policy. */
    const entry = (file: string, i: number): number[] => {
      const b = readFileSync(file);
      return Array.from({ length: 7 }, (_, k) => b.readUInt32LE(64 + 64 * i + 4 * k));
    };
    const uuids = ['GPU-ab120000-0000-4000-8000-000000000001', 'GPU-cd340000-0000-4000-8000-000000000002'];
    const uid = process.getuid?.() ?? 0;

    it("takes an entry per GPU for the task's uid before the command runs, tells the command which, and frees them when it ends", () => {
      const boards = join(dir, 'grants');
      mkdirSync(boards);
      const grants = uuids.map((u) => join(boards, `gpushare-compute-${u}.grants`));
      const script = `echo "grants $GPUSHARE_COMPUTE_GRANTS|\${GPUSHARE_EXEC_GRANT-unset}"; od -An -tu4 -w28 -j 64 -N 28 ${grants[1]}`;
      // A task's own GPUSHARE_COMPUTE_GRANTS never reaches the command: only what the wrapper took.
      const env = { GPUSHARE_EXEC_BOARDS: uuids.map((u) => join(boards, `gpushare-compute-${u}.u${uid}`)).join(':'), GPUSHARE_EXEC_GRANT: '300000,2,1', GPUSHARE_COMPUTE_GRANTS: `${uuids[0]}=7` };
      const r = run(['sh', '-c', script], env);
      expect(r.status).toEqual({ kind: 'exit', code: 0 });
      const [head, dump] = r.stdout.trim().split('\n');
      expect(head).toBe(`grants ${uuids[0]}=0,${uuids[1]}=0|unset`);
      const seen = (dump ?? '').trim().split(/\s+/).map(Number);
      expect(seen.slice(2)).toEqual([1, uid, 300_000, 2, 1]); // live, the task's uid, its terms
      expect(seen[0]! % 2).toBe(1); // the owner's odd nonce ...
      expect(seen[1]).toBeGreaterThan(0); // ... and the wrapper's pid
      for (const f of grants) {
        const st = statSync(f);
        expect([st.size, st.mode & 0o777, st.uid]).toEqual([GRANTS_BYTES, 0o644, uid]);
        expect(entry(f, 0)).toEqual([0, 0, 0, uid, 300_000, 2, 1]); // freed: no owner, not live
      }
      // Taken again by the next task (entry 0 is free), with its own terms.
      const again = run(['sh', '-c', 'echo "$GPUSHARE_COMPUTE_GRANTS"'], { ...env, GPUSHARE_EXEC_GRANT: '1000000,0,2' });
      expect(again.stdout.trim()).toBe(`${uuids[0]}=0,${uuids[1]}=0`);
      expect(entry(grants[0]!, 0).slice(2)).toEqual([0, uid, 1_000_000, 0, 2]);
    });

    it('takes over an entry whose wrapper is gone, and runs the command without grants it cannot take, saying why', () => {
      const boards = join(dir, 'grants-2');
      mkdirSync(boards);
      const file = join(boards, `gpushare-compute-${uuids[0]}.grants`);
      const board = join(boards, `gpushare-compute-${uuids[0]}.u${uid}`);
      run(['true'], { GPUSHARE_EXEC_BOARDS: board, GPUSHARE_EXEC_GRANT: '100000,1,1' }); // makes the file
      const b = readFileSync(file);
      for (let i = 0; i < 64; i++) b.writeUInt32LE(i === 3 ? 0x7ffffff0 : process.pid, 64 + 64 * i + 4); // entry 3's pid is gone
      for (let i = 0; i < 64; i++) b.writeUInt32LE(1, 64 + 64 * i);
      writeFileSync(file, b);
      const r = run(['sh', '-c', 'echo "$GPUSHARE_COMPUTE_GRANTS"'], { GPUSHARE_EXEC_BOARDS: board, GPUSHARE_EXEC_GRANT: '100000,1,1' });
      expect(r.stdout.trim()).toBe(`${uuids[0]}=3`);
      // all taken (entry 3 by this test's pid now), a board not named as one, terms the daemon never writes
      const c = readFileSync(file);
      c.writeUInt32LE(process.pid, 64 + 64 * 3 + 4);
      c.writeUInt32LE(1, 64 + 64 * 3);
      writeFileSync(file, c);
      const full = run(['sh', '-c', 'echo "ran ${GPUSHARE_COMPUTE_GRANTS-none}"'], { GPUSHARE_EXEC_BOARDS: `${board}:${join(boards, 'not-a-board')}`, GPUSHARE_EXEC_GRANT: '100000,1,1' });
      expect(full.stdout.trim()).toBe('ran none');
      expect(full.stderr).toMatch(/the compute grants .*\.grants are all taken \(64 tasks\): compute is limited for this task alone/);
      expect(full.stderr).toMatch(/not-a-board is not named as a compute board: no grant for it/);
      const bad = run(['sh', '-c', 'echo "ran ${GPUSHARE_COMPUTE_GRANTS-none}"'], { GPUSHARE_EXEC_BOARDS: board, GPUSHARE_EXEC_GRANT: '2000000,1,1', GPUSHARE_COMPUTE_GRANTS: 'forged=1' });
      expect(bad.stdout.trim()).toBe('ran none');
      expect(bad.stderr).toMatch(/GPUSHARE_EXEC_GRANT=2000000,1,1 is not SHARE_PPM,PRIORITY,POLICY/);
    });
  });

  it('refuses a call without its arguments', () => {
    const r = spawnSync(exec, ['only-status'], { encoding: 'utf8' });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/usage: gpushare-exec \[--claim CLAIM_FILE\] STATUS_FILE -- COMMAND/);
  });

  it('reads only whole, well-formed status files', () => {
    expect(readExitStatus(join(dir, 'absent'))).toBeNull();
  });

  describe('with a launch claim', () => {
    it('claims before running: the claim names the wrapper (pid, start time), the command runs once', () => {
      const sub = mkdtempSync(join(dir, 'claim-'));
      const claim = join(sub, 'claim');
      const status = join(sub, 'status');
      // The command reports its parent (the wrapper) and what the claim said while it ran.
      const r = spawnSync(exec, ['--claim', claim, status, '--', 'sh', '-c', `echo "$PPID"; cat ${claim}`], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      const [wrapperPid, claimText] = r.stdout.split('\n');
      expect(claimText).toMatch(new RegExp(`^${wrapperPid} \\d+$`));
      const read = readClaim(claim);
      expect(read?.pid).toBe(Number(wrapperPid));
      expect(read?.startTime).toBeGreaterThan(0);
      expect(readExitStatus(status)).toEqual({ kind: 'exit', code: 0 });
      expect(readdirSync(sub).sort()).toEqual(['claim', 'status']); // no temporary file left
    });

    it('a second wrapper for the same launch runs nothing, writes no status and exits 120', () => {
      const sub = mkdtempSync(join(dir, 'claim-'));
      const claim = join(sub, 'claim');
      const status = join(sub, 'status');
      const out = join(sub, 'ran');
      const cmd = ['sh', '-c', `echo ran >> ${out}; exit 7`];
      expect(spawnSync(exec, ['--claim', claim, status, '--', ...cmd]).status).toBe(7);
      const again = spawnSync(exec, ['--claim', claim, status, '--', ...cmd], { encoding: 'utf8' });
      expect(again.status).toBe(EXIT_CLAIM_TAKEN);
      expect(again.stderr).toBe('');
      expect(readFileSync(out, 'utf8')).toBe('ran\n');
      expect(readExitStatus(status)).toEqual({ kind: 'exit', code: 7 }); // the first one's, untouched
    });

    it('of many wrappers started at once for one launch, exactly one runs the command', async () => {
      const { spawn } = await import('node:child_process');
      const sub = mkdtempSync(join(dir, 'claim-'));
      const claim = join(sub, 'claim');
      const out = join(sub, 'ran');
      const ends = await Promise.all(
        Array.from({ length: 8 }, () => {
          const child = spawn(exec, ['--claim', claim, join(sub, 'status'), '--', 'sh', '-c', `echo ran >> ${out}`]);
          return new Promise<{ pid: number | undefined; code: number | null }>((resolve) => child.once('exit', (code) => resolve({ pid: child.pid, code })));
        }),
      );
      expect(readFileSync(out, 'utf8')).toBe('ran\n');
      expect(ends.filter((e) => e.code === EXIT_CLAIM_TAKEN)).toHaveLength(7);
      const winner = ends.filter((e) => e.code === 0);
      expect(winner).toHaveLength(1);
      expect(readClaim(claim)?.pid).toBe(winner[0]?.pid); // the claim names the one that ran it
    });

    it('reads no claim as null and a malformed one as an error, never as "nobody claimed"', () => {
      expect(readClaim(join(dir, 'no-claim'))).toBeNull();
      const bad = join(dir, 'bad-claim');
      writeFileSync(bad, '12 ');
      expect(() => readClaim(bad)).toThrow(/launch claim .* is unreadable/);
    });
  });
});
