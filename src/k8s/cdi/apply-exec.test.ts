/**
 * The executor for real: hooks in their phases with the OCI state on stdin, a bind mount that only
 * the process sees, device nodes checked, supplementary groups, and the refusals. Performing
 * needs root (CI runs as root); those tests are skipped elsewhere, saying why.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDeviceNodes, createMountTargets, execTools, runPlan } from './apply-exec.js';
import { applyEdits, baseProcess, type ProcessPlan } from './apply.js';

const root = mkdtempSync(join(tmpdir(), 'gs-cdi-exec-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const isRoot = process.getuid?.() === 0;

function plan(argv: string[]): ProcessPlan {
  const b = baseProcess(argv);
  if (!b.ok) throw new Error('base');
  return b.value;
}

describe('the executor', () => {
  it('refuses clearly when a tool is missing (or, not root, that it needs root)', () => {
    const r = execTools('/nonexistent');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.issues[0]?.message).toMatch(isRoot ? /unshare, mount, bash, env not found on PATH/ : /needs root/);
  });

  it('a runner that cannot be started is an error result, not a crash', async () => {
    const tools = { unshare: join(root, 'no-unshare'), mount: '/bin/mount', bash: '/bin/bash', env: '/usr/bin/env', setpriv: null, timeout: null };
    expect(await runPlan(plan(['/bin/true']), tools, { id: 'x' })).toMatchObject({ ok: false, issues: [{ field: 'executor', message: /cannot start .*no-unshare: spawn .* ENOENT/ }] });
  });

  it('checks device nodes: a character device passes, a missing one is refused or listed, a regular file is refused', () => {
    const p = applyEdits(plan(['/bin/true']), { deviceNodes: [{ path: '/dev/null', permissions: 'rw' }, { path: '/dev/gs-none', hostPath: join(root, 'none') }] });
    expect(checkDeviceNodes(p, 'fail')).toMatchObject({ ok: false, issues: [{ field: 'deviceNodes /dev/gs-none', message: /does not exist/ }] });
    expect(checkDeviceNodes(p, 'report')).toEqual({ ok: true, value: { present: ['/dev/null'], missing: [join(root, 'none')], notEnforced: ['/dev/null: cgroup permissions "rw"'] } });
    expect(checkDeviceNodes(applyEdits(plan(['/bin/true']), { deviceNodes: [{ path: '/dev/null', type: 'b' }] }), 'fail')).toMatchObject({ ok: false, issues: [{ message: /a type c device, not type b/ }] });
    writeFileSync(join(root, 'file'), '');
    expect(checkDeviceNodes(applyEdits(plan(['/bin/true']), { deviceNodes: [{ path: '/dev/x', hostPath: join(root, 'file') }] }), 'fail')).toMatchObject({ ok: false, issues: [{ message: /not a device node/ }] });
  });

  it('refuses a relative or ".." container path before creating anything', () => {
    const p = applyEdits(plan(['/bin/true']), { mounts: [{ hostPath: root, containerPath: join(root, 'ok-target') }, { hostPath: root, containerPath: '/tmp/../etc' }] });
    expect(createMountTargets([p])).toMatchObject({ ok: false, issues: [{ field: 'mounts /tmp/../etc', message: /no "\.\." part/ }] });
    expect(existsSync(join(root, 'ok-target'))).toBe(false);
  });

  it.skipIf(!isRoot)('runs hooks in their phases with the OCI state, mounts only the process sees, and exactly its groups (root only)', async () => {
    const tools = execTools();
    expect(tools.ok).toBe(true);
    if (!tools.ok) return;
    const log = join(root, 'hooks.log');
    const hook = join(root, 'hook.sh');
    // A script's $0 is its path whatever argv[0] was (the kernel hands the interpreter the path), so the hook says its phase from its env and its argument.
    writeFileSync(hook, `#!/bin/sh\n{ printf 'hook %s %s ' "$PHASE" "$1"; cat; echo; [ "$PHASE" != createContainer ] || cat ${root}/target/secret; echo; } >> ${log}\n`);
    chmodSync(hook, 0o755);
    mkdirSync(join(root, 'src'));
    writeFileSync(join(root, 'src', 'secret'), 'mounted');
    const target = join(root, 'target');
    const hooks = (['createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const).map((hookName) => ({ hookName, path: hook, args: ['hook', `arg-${hookName}`], env: [`PHASE=${hookName}`] }));
    const p = applyEdits(plan(['/bin/sh', '-c', `cat ${target}/secret; echo; id -G`]), {
      mounts: [{ hostPath: join(root, 'src'), containerPath: target, type: 'bind', options: ['rbind', 'ro'] }], hooks, additionalGids: [0, 4242, 4243],
    });
    const targets = createMountTargets([p]);
    expect(targets.ok).toBe(true);
    if (!targets.ok) return;
    const r = await runPlan(p, tools.value, { id: 'c1', bundle: '/b' });
    targets.value.remove();
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.stderr).toBe('');
    expect(r.value.stdout).toBe(`mounted\n0 4242 4243\n`);
    expect(existsSync(target)).toBe(false); // created for the mount, removed after; never mounted outside
    const lines = readFileSync(log, 'utf8').trim().split('\n').filter((l) => l !== '');
    const states = lines.filter((l) => l.startsWith('hook ')).map((l) => {
      const [, phase, arg, ...json] = l.split(' ');
      return { phase, arg, state: JSON.parse(json.join(' ')) as { id: string; status: string; pid?: number; bundle: string } };
    });
    expect(states.map((s) => `${s.phase} ${s.arg} ${s.state.status}`)).toEqual([
      'createRuntime arg-createRuntime creating', 'createContainer arg-createContainer creating', 'startContainer arg-startContainer created', 'poststart arg-poststart running', 'poststop arg-poststop stopped',
    ]);
    expect(lines).toContain('mounted'); // createContainer ran inside the namespace, after the mounts
    expect(new Set(states.slice(1).map((s) => s.state.pid))).toEqual(new Set([r.value.pid]));
    expect(states.every((s) => s.state.id === 'c1' && s.state.bundle === '/b')).toBe(true);
  });

  it.skipIf(!isRoot)('a failing hook before the start fails it; nothing runs (root only)', async () => {
    const tools = execTools();
    if (!tools.ok) throw new Error('tools');
    const marker = join(root, 'ran');
    const fails = applyEdits(plan(['/bin/sh', '-c', `touch ${marker}`]), { hooks: [{ hookName: 'createContainer', path: '/bin/false' }] });
    const r = await runPlan(fails, tools.value, { id: 'c2' });
    expect(r.ok && r.value.code).toBe(125);
    expect(r.ok && r.value.stderr).toMatch(/createContainer hook \/bin\/false failed/);
    expect(existsSync(marker)).toBe(false);
    const before = applyEdits(plan(['/bin/sh', '-c', `touch ${marker}`]), { hooks: [{ hookName: 'createRuntime', path: '/bin/false' }] });
    expect(await runPlan(before, tools.value, { id: 'c3' })).toMatchObject({ ok: false, issues: [{ field: 'hooks.createRuntime', message: /\/bin\/false failed: exit 1/ }] });
    expect(existsSync(marker)).toBe(false);
  });
});
