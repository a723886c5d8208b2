/**
 * deploy/systemd/gpushare.service parsed as systemd reads a unit (sections of key=value lines,
 * repeatable keys) and checked for what the service promises: `gpushare serve` as root with the
 * system paths, tasks that survive a stop or restart of the daemon, restarts on failure, and
 * none of the hardening options that would break the sandbox or the GPUs.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SYSTEM_PATHS } from '../../src/node/paths.js';

type Unit = Map<string, Map<string, string[]>>;

/** A unit file: `[Section]` headers, `Key=Value` lines (a key may repeat), `#`/`;` comments, `\` continuations. */
export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | null = null;
  let pending = '';
  for (const [n, raw] of text.split('\n').entries()) {
    const line = pending + raw.trim();
    pending = '';
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    if (line.endsWith('\\')) {
      pending = `${line.slice(0, -1)} `;
      continue;
    }
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = unit.get(header[1]!) ?? new Map<string, string[]>();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (section === null || eq <= 0) throw new Error(`line ${n + 1}: neither a [Section] nor Key=Value inside one: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

const unit = parseUnit(readFileSync(new URL('../../deploy/systemd/gpushare.service', import.meta.url), 'utf8'));
const service = unit.get('Service')!;
const one = (key: string): string | undefined => service.get(key)?.at(-1);

describe('the unit parser', () => {
  it('reads sections, repeated keys and continuations, and refuses a line outside a section', () => {
    const u = parseUnit('# c\n[A]\nX=1\nX=2\nY=a \\\n  b\n');
    expect(u.get('A')?.get('X')).toEqual(['1', '2']);
    expect(u.get('A')?.get('Y')).toEqual(['a  b']);
    expect(() => parseUnit('X=1\n')).toThrow(/line 1/);
  });
});

describe('deploy/systemd/gpushare.service', () => {
  it('runs `gpushare serve` as root, with the system paths as the defaults', () => {
    expect(one('ExecStart')).toMatch(/^\/\S+\/gpushare serve$/);
    expect(service.has('User')).toBe(false); // root: it switches to tenants' users and writes cgroups
    expect(service.has('DynamicUser')).toBe(false);
    expect(`/run/${one('RuntimeDirectory')}/gpushare.sock`).toBe(SYSTEM_PATHS.socket);
    expect(`/var/lib/${one('StateDirectory')}`).toBe(SYSTEM_PATHS.stateDir);
    expect(`/etc/${one('ConfigurationDirectory')}`).toBe(SYSTEM_PATHS.configDir);
    expect(one('StateDirectoryMode')).toBe('0700');
  });

  it('never kills the tasks on stop or restart, and restarts the daemon when it fails', () => {
    expect(one('KillMode')).toBe('process');
    expect(one('Restart')).toBe('on-failure');
    expect(one('RuntimeDirectoryPreserve')).toBe('yes');
    expect(one('TasksMax')).toBe('infinity');
  });

  it('reloads with SIGHUP', () => {
    expect(one('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
  });

  it('sets nothing tasks would inherit or that breaks the sandbox, the GPUs or daemonNice', () => {
    const breaking = [
      'NoNewPrivileges', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'ProtectControlGroups', 'ProtectKernelTunables',
      'PrivateDevices', 'DevicePolicy', 'DeviceAllow', 'ProtectClock', 'ProtectKernelModules', 'MemoryDenyWriteExecute',
      'RestrictNamespaces', 'SystemCallFilter', 'CapabilityBoundingSet', 'Nice', 'OOMScoreAdjust', 'CPUWeight', 'PrivateUsers',
    ];
    expect(breaking.filter((k) => service.has(k))).toEqual([]);
    expect(unit.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });
});
