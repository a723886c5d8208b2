import { describe, expect, it } from 'vitest';
import { passedEnv } from './run.js';

describe('what `gpushare run` sends of the caller\'s environment', () => {
  const env = { PATH: '/home/u/.venv/bin:/usr/bin', HOME: '/home/u', GPUSHARE_TOKEN: 'secret', GPUSHARE_HOST: '/run/x.sock', VIRTUAL_ENV: '/home/u/.venv', 'BAD-NAME': 'x', UNSET: undefined };

  it('sends PATH only by default, so commands resolve as in the caller\'s shell', () => {
    expect(passedEnv(env, false)).toEqual({ PATH: '/home/u/.venv/bin:/usr/bin' });
    expect(passedEnv({}, false)).toEqual({});
  });

  it('sends everything with -E but the CLI\'s own GPUSHARE_* settings and names the API would refuse', () => {
    expect(passedEnv(env, true)).toEqual({ PATH: '/home/u/.venv/bin:/usr/bin', HOME: '/home/u', VIRTUAL_ENV: '/home/u/.venv' });
  });
});
