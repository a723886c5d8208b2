import { describe, expect, it } from 'vitest';
import { workerListening } from '../../contract/remote-worker.js';
import { clientEnv, dataHost, listeningPort } from './remote-session.js';

const KEY = 'ab'.repeat(32);

describe('a remote session as a task', () => {
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

  it("reads a TLS worker's certificate pin beside its port", () => {
    const fp = '0f'.repeat(32);
    expect(workerListening(`gpushare-remote-worker listening 40123 tls-sha256 ${fp}\n`)).toEqual({ port: 40123, tlsSha256: fp });
    expect(listeningPort(`gpushare-remote-worker listening 40123 tls-sha256 ${fp}\n`)).toBe(40123);
    expect(workerListening('gpushare-remote-worker listening 40123\n')).toEqual({ port: 40123, tlsSha256: null });
    expect(workerListening(`gpushare-remote-worker listening 40123 tls-sha256 ${fp.slice(2)}\n`)).toBeNull();
    expect(workerListening(`gpushare-remote-worker listening 40123 tls-sha256 ${fp.toUpperCase()}\n`)).toBeNull();
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

  it("gives a TLS session's pin to the program, and drops an inherited pin for a plaintext one", () => {
    const fp = '0f'.repeat(32);
    expect(clientEnv({}, 'h:1', KEY, '/gs/remote', fp)['GPUSHARE_REMOTE_TLS_SHA256']).toBe(fp);
    expect(clientEnv({ GPUSHARE_REMOTE_TLS_SHA256: fp }, 'h:1', KEY, '/gs/remote', null)).not.toHaveProperty('GPUSHARE_REMOTE_TLS_SHA256');
  });
});
