import { describe, expect, it } from 'vitest';
import { OpenRemoteSessionSchema } from '../contract/remote.js';
import { workerTask } from './sessions.js';

describe('a remote session as a task', () => {
  it('runs the worker on one GPU with the slice, the key only in a file named on its command line', () => {
    const body = workerTask({ memory: '8Gi', compute: '30', priority: 'high', connectTimeoutSeconds: 5 }, '/opt/gs/gpushare-remote-worker', '/run/k/abc.key');
    expect(body.command).toEqual(['/opt/gs/gpushare-remote-worker', '--listen', '0.0.0.0:0', '--key-file', '/run/k/abc.key', '--accept-timeout-ms', '5000', '--idle-timeout-ms', '60000']);
    expect(body).not.toHaveProperty('env');
    expect(body).toMatchObject({ gpus: 1, memory: '8Gi', compute: '30', priority: 'high' });
    expect(body).not.toHaveProperty('tenant');
    expect(workerTask({ port: 7000, tenant: 'team-a' }, '/w', '/k').command[2]).toBe('0.0.0.0:7000');
  });

  it.each([
    ['two GPUs', { gpus: 2 }],
    ['a port out of range', { port: 70000 }],
    ['a fractional port', { port: 1.5 }],
    ['an unknown field', { command: ['sh'] }],
    ['a zero connect timeout', { connectTimeoutSeconds: 0 }],
  ])('refuses a body with %s', (_what, body) => {
    expect(OpenRemoteSessionSchema.safeParse(body).success).toBe(false);
  });
});
