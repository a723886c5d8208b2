import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

  it('keeps one connection for many calls (client-node alone opens one a call), each call still sending the token', async () => {
    let connections = 0;
    const auth: (string | undefined)[] = [];
    const server = createServer((req, res) => {
      auth.push(req.headers.authorization);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ apiVersion: 'v1', kind: 'NodeList', metadata: {}, items: [{ metadata: { name: 'n1' } }] }));
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const clients = apiClients(loadKubeConfig({ kind: 'url', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 'tok' }));
      for (let i = 0; i < 5; i++) expect((await clients.core.listNode()).items.map((n) => n.metadata?.name)).toEqual(['n1']);
      await Promise.all([clients.core.listNode(), clients.core.listNode()]); // two at once: two connections at most, kept too
      for (let i = 0; i < 3; i++) await clients.core.listNode();
      expect(auth).toEqual(Array(10).fill('Bearer tok'));
      expect(connections).toBeLessThanOrEqual(2);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
