/**
 * Where the kubelet plugin reads ResourceClaims: the kubelet names a claim (namespace, name,
 * uid) and the plugin reads its allocation from the API server. An interface so tests can
 * hand claims over in the exact JSON the API server returns.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { apiClients } from '../api/client.js';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';

export interface ClaimSource {
  /** The claim's JSON (resource.k8s.io/v1 ResourceClaim, as the API server serializes it). */
  read(namespace: string, name: string): Promise<unknown>;
}

/**
 * Claims from the API server through @kubernetes/client-node's ResourceV1Api, one GET a claim on
 * NodePrepareResources' path, over a kept connection (apiClients: before session 25 every read
 * opened a new one, a TLS handshake on the kubelet's path).
 */
export function apiClaimSource(kubeConfig: KubeConfig): ClaimSource {
  const api = apiClients(kubeConfig).resource;
  return {
    async read(namespace, name) {
      const claim = await api.readNamespacedResourceClaim({ namespace, name });
      // Back to the wire's JSON (dates as strings, unset fields absent): one decoder for both sources.
      return JSON.parse(JSON.stringify(ObjectSerializer.serialize(claim, 'ResourceV1ResourceClaim', ''))) as unknown;
    },
  };
}
