import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFakeApiServer, type FakeApiServer } from '../../../test/k8s/fake-apiserver.js';
import { apiClients, apiFailure, isTransient, loadKubeConfig } from './client.js';

let api: FakeApiServer;
beforeEach(async () => {
  api = await startFakeApiServer();
});
afterEach(async () => {
  await api.close();
});

describe('API client', () => {
  it('connects from a URL and reads through the typed groups', async () => {
    api.seed('nodes', { metadata: { name: 'n1' } });
    const clients = apiClients(loadKubeConfig({ kind: 'url', server: api.url, token: 't' }));
    expect((await clients.core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['n1']);
    expect((await clients.resource.listDeviceClass()).items).toEqual([]);
  });

  it.each([
    [409, 'Conflict', false],
    [404, 'NotFound', false],
    [422, 'Invalid', false],
    [429, 'TooManyRequests', true],
    [500, 'InternalError', true],
    [503, 'ServiceUnavailable', true],
  ])('reads a %d as %s (transient: %s)', async (code, reason, transient) => {
    api.failNext({ verb: 'get', resource: 'nodes' }, { code, message: `because ${code}` });
    const clients = apiClients(api.kubeConfig());
    const failure = apiFailure(await clients.core.readNode({ name: 'n1' }).catch((err: unknown) => err));
    expect(failure).toEqual({ code, reason, message: `because ${code}` });
    expect(isTransient(failure)).toBe(transient);
  });

  it('reads no answer at all as code 0, transient', async () => {
    const clients = apiClients(loadKubeConfig({ kind: 'url', server: 'http://127.0.0.1:1' }));
    const failure = apiFailure(await clients.core.listNode().catch((err: unknown) => err));
    expect(failure.code).toBe(0);
    expect(failure.message).toMatch(/ECONNREFUSED/);
    expect(isTransient(failure)).toBe(true);
  });
});
