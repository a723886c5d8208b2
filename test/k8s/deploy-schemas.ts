/**
 * Strict zod schemas for the deploy/ objects client-node has no model for, written from their
 * Go types: the kube-scheduler's KubeSchedulerConfiguration (k8s.io/kube-scheduler config/v1
 * types.go, with component-base config/v1alpha1's leader election, client connection and
 * debugging structs) plus the checks its validation makes that a config file can fail; and
 * cert-manager's Issuer and Certificate (cert-manager.io/v1) for the fields a spec may have.
 * Unknown fields fail, as the scheduler's strict decoding and the API server's strict field
 * validation would.
 */
import { z } from 'zod';

/** metav1.Duration: Go's time.ParseDuration text. */
const duration = z.string().regex(/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/, 'must be a Go duration such as 5s or 1m30s');
const int32 = z.int().min(-(2 ** 31)).max(2 ** 31 - 1);
const int64 = z.int();

const leaderElection = z.strictObject({
  leaderElect: z.boolean().optional(),
  leaseDuration: duration.optional(),
  renewDeadline: duration.optional(),
  retryPeriod: duration.optional(),
  resourceLock: z.enum(['leases', 'endpointsleases', 'configmapsleases']).optional(),
  resourceName: z.string().optional(),
  resourceNamespace: z.string().optional(),
});

const clientConnection = z.strictObject({
  kubeconfig: z.string().optional(),
  acceptContentTypes: z.string().optional(),
  contentType: z.string().optional(),
  qps: z.number().optional(),
  burst: int32.optional(),
});

const plugin = z.strictObject({ name: z.string().min(1), weight: int32.optional() });
const pluginSet = z.strictObject({ enabled: z.array(plugin).optional(), disabled: z.array(plugin).optional() });
const extensionPoints = ['preEnqueue', 'queueSort', 'preFilter', 'filter', 'postFilter', 'preScore', 'score', 'reserve', 'permit', 'preBind', 'bind', 'postBind', 'multiPoint', 'placementGenerate', 'placementScore', 'podGroupPostFilter'] as const;
const plugins = z.strictObject(Object.fromEntries(extensionPoints.map((p) => [p, pluginSet.optional()])));

const profile = z.strictObject({
  schedulerName: z.string().min(1, 'profiles[].schedulerName is required'),
  percentageOfNodesToScore: int32.min(0).max(100).optional(),
  plugins: plugins.optional(),
  pluginConfig: z.array(z.strictObject({ name: z.string().min(1), args: z.record(z.string(), z.unknown()).optional() })).optional(),
});

/** An extended resource name (the scheduler's validation: a qualified name outside kubernetes.io). */
const extendedResource = z.string().regex(/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)\/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'must be an extended resource name (domain/name)')
  .refine((n) => !n.startsWith('kubernetes.io/') && !n.startsWith('requests.'), 'must not be in kubernetes.io');

const extender = z
  .strictObject({
    urlPrefix: z.url({ protocol: /^https?$/ }),
    filterVerb: z.string().optional(),
    preemptVerb: z.string().optional(),
    prioritizeVerb: z.string().optional(),
    weight: int64.optional(),
    bindVerb: z.string().optional(),
    enableHTTPS: z.boolean().optional(),
    // ExtenderTLSConfig: file paths, or the same as base64 data ([]byte in Go).
    tlsConfig: z
      .strictObject({
        insecure: z.boolean().optional(),
        ...Object.fromEntries(['serverName', 'certFile', 'keyFile', 'caFile'].map((k) => [k, z.string().optional()])),
        ...Object.fromEntries(['certData', 'keyData', 'caData'].map((k) => [k, z.base64().optional()])),
      })
      .optional(),
    httpTimeout: duration.optional(),
    nodeCacheCapable: z.boolean().optional(),
    managedResources: z.array(z.strictObject({ name: extendedResource, ignoredByScheduler: z.boolean().optional() })).optional(),
    ignorable: z.boolean().optional(),
  })
  // The scheduler's validation: a prioritizing extender needs a positive weight.
  .refine((e) => !e.prioritizeVerb || (e.weight ?? 0) > 0, { message: 'an extender with a prioritizeVerb must have a positive weight', path: ['weight'] })
  .refine((e) => (e.urlPrefix.startsWith('https:') ? e.enableHTTPS === true : e.enableHTTPS !== true), { message: 'enableHTTPS must match the urlPrefix\'s scheme', path: ['enableHTTPS'] });

export const kubeSchedulerConfigurationSchema = z
  .strictObject({
    apiVersion: z.literal('kubescheduler.config.k8s.io/v1'),
    kind: z.literal('KubeSchedulerConfiguration'),
    parallelism: int32.min(1).optional(),
    leaderElection: leaderElection.optional(),
    clientConnection: clientConnection.optional(),
    enableProfiling: z.boolean().optional(),
    enableContentionProfiling: z.boolean().optional(),
    percentageOfNodesToScore: int32.min(0).max(100).optional(),
    podInitialBackoffSeconds: int64.min(1).optional(),
    podMaxBackoffSeconds: int64.min(1).optional(),
    profiles: z.array(profile).optional(),
    extenders: z.array(extender).optional(),
    delayCacheUntilActive: z.boolean().optional(),
  })
  .refine((c) => new Set((c.profiles ?? []).map((p) => p.schedulerName)).size === (c.profiles ?? []).length, { message: 'profiles must have distinct schedulerNames', path: ['profiles'] })
  .refine((c) => (c.extenders ?? []).filter((e) => e.bindVerb).length <= 1, { message: 'only one extender may bind', path: ['extenders'] });

const issuerRef = z.strictObject({ name: z.string().min(1), kind: z.enum(['Issuer', 'ClusterIssuer']).optional(), group: z.string().optional() });
const objectMeta = z.strictObject({ name: z.string().min(1), namespace: z.string().optional(), labels: z.record(z.string(), z.string()).optional(), annotations: z.record(z.string(), z.string()).optional() });
const keyUsages = ['signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing', 'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc'] as const;

export const certManagerIssuerSchema = z.strictObject({
  apiVersion: z.literal('cert-manager.io/v1'),
  kind: z.literal('Issuer'),
  metadata: objectMeta,
  spec: z
    .strictObject({
      selfSigned: z.strictObject({ crlDistributionPoints: z.array(z.string()).optional() }).optional(),
      ca: z.strictObject({ secretName: z.string().min(1), crlDistributionPoints: z.array(z.string()).optional(), ocspServers: z.array(z.string()).optional(), issuingCertificateURLs: z.array(z.string()).optional() }).optional(),
    })
    .refine((s) => [s.selfSigned, s.ca].filter((x) => x !== undefined).length === 1, 'an Issuer has exactly one issuer type'),
});

export const certManagerCertificateSchema = z.strictObject({
  apiVersion: z.literal('cert-manager.io/v1'),
  kind: z.literal('Certificate'),
  metadata: objectMeta,
  spec: z.strictObject({
    secretName: z.string().min(1),
    issuerRef,
    commonName: z.string().max(64).optional(),
    dnsNames: z.array(z.string().min(1)).optional(),
    ipAddresses: z.array(z.string()).optional(),
    duration: duration.optional(),
    renewBefore: duration.optional(),
    isCA: z.boolean().optional(),
    usages: z.array(z.enum(keyUsages)).optional(),
    privateKey: z
      .strictObject({
        algorithm: z.enum(['RSA', 'ECDSA', 'Ed25519']).optional(),
        size: z.int().optional(),
        encoding: z.enum(['PKCS1', 'PKCS8']).optional(),
        rotationPolicy: z.enum(['Never', 'Always']).optional(),
      })
      .optional(),
  }),
});
