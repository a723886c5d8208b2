import { describe, expect, it } from 'vitest';
import { clientEnv, dataHost, listeningPort, sessionTask } from './remote-session.js';

const KEY = 'ab'.repeat(32);

describe('a remote session as a task', () => {
  it('runs the worker on one GPU with the slice, the key only in its environment', () => {
    const body = sessionTask({ workerPath: '/opt/gs/gpushare-remote-worker', key: KEY, port: 0, acceptTimeoutMs: 60_000, idleTimeoutMs: 30_000, memory: '8Gi', compute: '30', priority: 'high' });
    expect(body.command).toEqual(['/opt/gs/gpushare-remote-worker', '--listen', '0.0.0.0:0', '--accept-timeout-ms', '60000', '--idle-timeout-ms', '30000']);
    expect(body.command.join(' ')).not.toContain(KEY);
    expect(body.env).toEqual({ GPUSHARE_REMOTE_KEY: KEY });
    expect(body).toMatchObject({ gpus: 1, memory: '8Gi', compute: '30', priority: 'high' });
    expect(body).not.toHaveProperty('tenant');
  });

  it.each([
    ['a short key', { key: 'ab' }, /64 lowercase hex/],
    ['an upper-case key', { key: 'AB'.repeat(32) }, /64 lowercase hex/],
    ['a port out of range', { port: 70000 }, /0-65535/],
    ['a fractional port', { port: 1.5 }, /0-65535/],
  ])('refuses %s', (_what, change, message) => {
    expect(() => sessionTask({ workerPath: '/w', key: KEY, port: 0, acceptTimeoutMs: 1, idleTimeoutMs: 1, ...change })).toThrow(message);
  });

  it.each([
    ['gpushare-remote-worker listening 40123\n', 40123],
    ['noise\ngpushare-remote-worker listening 7\nmore', 7],
    ['gpushare-remote-worker listening 0\n', null],
    ['gpushare-remote-worker listening 70000\n', null],
    ['gpushare-remote-worker listening', null],
    ['x gpushare-remote-worker listening 5\n', null],
  ])('reads the port of %j as %j', (text, port) => {
    expect(listeningPort(text)).toBe(port);
  });

  it('reaches the worker at the daemon host, or loopback for a socket', () => {
    expect(dataHost({ kind: 'unix' })).toBe('127.0.0.1');
    expect(dataHost({ kind: 'tcp', url: new URL('https://gpu1.example:7070') })).toBe('gpu1.example');
    expect(dataHost({ kind: 'tcp', url: new URL('http://[::1]:7070') })).toBe('[::1]');
  });

  it('puts the client library first on the library path of the local program', () => {
    expect(clientEnv({ PATH: '/bin', LD_LIBRARY_PATH: '/usr/lib/x', GPUSHARE_REMOTE: 'old' }, 'h:1', KEY, '/gs/remote')).toEqual({
      PATH: '/bin',
      LD_LIBRARY_PATH: '/gs/remote:/usr/lib/x',
      GPUSHARE_REMOTE: 'h:1',
      GPUSHARE_REMOTE_KEY: KEY,
    });
    expect(clientEnv({}, 'h:1', KEY, '/gs/remote')['LD_LIBRARY_PATH']).toBe('/gs/remote');
  });
});
