import { describe, expect, it } from 'vitest';
import { clientSocketPath, defaultSocketPath, SYSTEM_SOCKET } from './paths.js';

describe('defaultSocketPath', () => {
  it('takes XDG_RUNTIME_DIR, else the system socket for root, else a per-user one under /tmp', () => {
    expect(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/7/' }, 7)).toBe('/run/user/7/gpushare/gpushare.sock');
    expect(defaultSocketPath({ XDG_RUNTIME_DIR: 'relative' }, 7)).toBe('/tmp/gpushare-7/gpushare.sock');
    expect(defaultSocketPath({}, 0)).toBe(SYSTEM_SOCKET);
    expect(defaultSocketPath({ XDG_RUNTIME_DIR: '/run/user/0' }, 0)).toBe('/run/user/0/gpushare/gpushare.sock');
  });
});

describe('clientSocketPath', () => {
  const env = { XDG_RUNTIME_DIR: '/run/user/7' };
  const own = '/run/user/7/gpushare/gpushare.sock';
  it("dials the user's daemon first, the system service when only that one is there, else names the user's", () => {
    expect(clientSocketPath(env, 7, (p) => p === own || p === SYSTEM_SOCKET)).toBe(own);
    expect(clientSocketPath(env, 7, (p) => p === SYSTEM_SOCKET)).toBe(SYSTEM_SOCKET);
    expect(clientSocketPath(env, 7, () => false)).toBe(own);
  });
});
