import { describe, expect, it } from 'vitest';
import { AUTO_DAEMON_NICE, applyDaemonNice, parseAutogroupNice, type ProcSelf } from './priority.js';
import { parseDaemonNice } from './config.js';

function fakeProc(opts: { sid: number; pid?: number; group?: string | Error; writeError?: string }): ProcSelf & { written: string[] } {
  const written: string[] = [];
  let group = opts.group ?? '/autogroup-42 nice 0\n';
  return {
    written,
    pid: opts.pid ?? 100,
    readStat: () => `100 (node (x) y) S 1 100 ${opts.sid} 0 -1 4194560 0 0 0 0 1 2 0 0 20 0 1 0 777 1000 50`,
    readAutogroup: () => {
      if (group instanceof Error) throw group;
      return group;
    },
    writeAutogroup: (text) => {
      if (opts.writeError) throw Object.assign(new Error('denied'), { code: opts.writeError });
      written.push(text);
      group = `/autogroup-42 nice ${text}\n`;
    },
  };
}

describe('daemon CPU priority', () => {
  it('reads an autogroup line and refuses other text', () => {
    expect(parseAutogroupNice('/autogroup-12 nice -10\n')).toBe(-10);
    expect(parseAutogroupNice('nice 3')).toBeNull();
  });

  it('sets the group nice of a session leader (auto: the default value)', () => {
    const proc = fakeProc({ sid: 100 });
    expect(applyDaemonNice('auto', proc)).toEqual({ kind: 'set', nice: AUTO_DAEMON_NICE });
    expect(proc.written).toEqual([String(AUTO_DAEMON_NICE)]);
    expect(applyDaemonNice(-3, proc)).toEqual({ kind: 'set', nice: -3 });
  });

  it("leaves a terminal's session alone", () => {
    const proc = fakeProc({ sid: 55 });
    const out = applyDaemonNice(-5, proc);
    expect(out).toMatchObject({ kind: 'unavailable', asked: true });
    expect(out.kind === 'unavailable' && out.problem).toMatch(/terminal's session/);
    expect(proc.written).toEqual([]);
  });

  it('says why when not permitted or when there are no autogroups', () => {
    const denied = applyDaemonNice('auto', fakeProc({ sid: 100, writeError: 'EPERM' }));
    expect(denied).toMatchObject({ kind: 'unavailable', asked: false });
    expect(denied.kind === 'unavailable' && denied.problem).toMatch(/CAP_SYS_NICE/);
    const none = applyDaemonNice('auto', fakeProc({ sid: 100, group: Object.assign(new Error('x'), { code: 'ENOENT' }) }));
    expect(none.kind === 'unavailable' && none.problem).toMatch(/no autogroups.*ENOENT/);
  });

  it('does nothing when off', () => {
    const proc = fakeProc({ sid: 100 });
    expect(applyDaemonNice('off', proc)).toEqual({ kind: 'off' });
    expect(proc.written).toEqual([]);
  });

  it('parses --daemon-nice and refuses what is not a nice value', () => {
    expect(parseDaemonNice('auto')).toBe('auto');
    expect(parseDaemonNice('off')).toBe('off');
    expect(parseDaemonNice('-20')).toBe(-20);
    expect(parseDaemonNice('19')).toBe(19);
    for (const bad of ['-21', '20', '1.5', 'high', '']) expect(() => parseDaemonNice(bad)).toThrow(/not auto, off, or a nice value from -20 to 19/);
  });
});
