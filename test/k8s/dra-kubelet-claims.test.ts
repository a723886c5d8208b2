/**
 * The ClaimSource over @kubernetes/client-node, against a local HTTP server that answers the one
 * endpoint it uses with the API server's JSON; the fixture itself is checked against the client
 * library's typed serializer, so the claims the other tests use are ones the API could return.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { apiClaimSource } from '../../src/k8s/dra/kubelet-claims.js';
import { decodeClaim } from '../../src/k8s/dra/prepare-claim.js';
import { claimJson, validConfig } from './dra-kubelet-fixtures.js';

let server: Server | null = null;

afterEach(async () => {
  await new Promise<void>((resolve) => (server === null ? resolve() : server.close(() => resolve())));
  server = null;
});

async function apiServer(objects: Record<string, unknown>): Promise<{ kubeConfig: KubeConfig; paths: string[] }> {
  const paths: string[] = [];
  server = createServer((req, res) => {
    paths.push(req.url ?? '');
    const body = objects[req.url ?? ''];
    res.setHeader('content-type', 'application/json');
    if (body === undefined) {
      res.statusCode = 404;
      res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message: 'resourceclaims.resource.k8s.io "gone" not found', reason: 'NotFound', code: 404 }));
      return;
    }
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [{ name: 'test', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'test' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'test' }],
    currentContext: 'test',
  });
  return { kubeConfig, paths };
}

describe('apiClaimSource', () => {
  const fixture = claimJson({ uid: '0c5a4a6e-9d1b-4f7e-8a6c-2b3d4e5f6a7b', name: 'train-gpu', namespace: 'ml', results: [{ device: 'gpu-0', shareID: 'a1b2', consumedCapacity: { memory: '8Gi', cores: '30' } }], parameters: validConfig });

  // The client library writes dates back with milliseconds; everything else must come back as it was.
  const withMilliseconds = (v: unknown): unknown => JSON.parse(JSON.stringify(v).replace(/T(\d\d:\d\d:\d\d)Z"/g, 'T$1.000Z"'));

  it('the fixture is a ResourceClaim the client library\'s typed serializer round-trips', () => {
    const typed = ObjectSerializer.deserialize(fixture, 'ResourceV1ResourceClaim', '');
    expect(JSON.parse(JSON.stringify(ObjectSerializer.serialize(typed, 'ResourceV1ResourceClaim', '')))).toEqual(withMilliseconds(fixture));
  });

  it('reads a claim from GET /apis/resource.k8s.io/v1/namespaces/<ns>/resourceclaims/<name> and hands back the wire JSON', async () => {
    const { kubeConfig, paths } = await apiServer({ '/apis/resource.k8s.io/v1/namespaces/ml/resourceclaims/train-gpu': fixture });
    const json = await apiClaimSource(kubeConfig).read('ml', 'train-gpu');
    expect(paths).toEqual(['/apis/resource.k8s.io/v1/namespaces/ml/resourceclaims/train-gpu']);
    expect(json).toEqual(withMilliseconds(fixture));
    const decoded = decodeClaim(json);
    expect(decoded.ok && decoded.value.results).toEqual([{ request: 'gpu', driver: 'gpu.gpushare.io', pool: 'node-a', device: 'gpu-0', shareID: 'a1b2', consumedCapacity: { memory: '8Gi', cores: '30' } }]);
  });

  it('fails with the API server\'s word when the claim is not there', async () => {
    const { kubeConfig } = await apiServer({});
    await expect(apiClaimSource(kubeConfig).read('ml', 'gone')).rejects.toThrow(/404|not found/i);
  });
});
