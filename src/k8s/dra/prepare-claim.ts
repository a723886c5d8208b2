/**
 * The decoding of a resource.k8s.io/v1 ResourceClaim as the kubelet plugin needs it: the
 * allocation results and opaque configs, validated at the boundary (the API server's JSON, or
 * @kubernetes/client-node's typed object serialized back to it). Only the fields the plugin
 * reads are checked; everything else passes through.
 */
import { z } from 'zod';
import { fail, ok, type Result } from '../../domain/result.js';

const quantity = z.union([z.string(), z.number()]);

const allocationResult = z.looseObject({
  request: z.string(),
  driver: z.string(),
  pool: z.string(),
  device: z.string(),
  shareID: z.string().optional(),
  consumedCapacity: z.record(z.string(), quantity).optional(),
});

const allocationConfig = z.looseObject({
  source: z.string(),
  requests: z.array(z.string()).optional(),
  opaque: z.looseObject({ driver: z.string(), parameters: z.unknown() }).optional(),
});

const claimSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), namespace: z.string(), uid: z.string() }),
  status: z
    .looseObject({
      allocation: z
        .looseObject({
          devices: z.looseObject({ results: z.array(allocationResult).optional(), config: z.array(allocationConfig).optional() }).optional(),
        })
        .optional(),
    })
    .optional(),
});

export type AllocationResult = z.infer<typeof allocationResult>;
export type AllocationConfig = z.infer<typeof allocationConfig>;

/** What the plugin needs of a claim. */
export interface ClaimAllocation {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  /** null: the claim is not allocated (yet, or any more). */
  readonly results: readonly AllocationResult[] | null;
  readonly configs: readonly AllocationConfig[];
}

/** Decodes a ResourceClaim's JSON; a malformed one is an error naming the first bad field. */
export function decodeClaim(json: unknown): Result<ClaimAllocation> {
  const parsed = claimSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue === undefined ? 'claim' : `claim.${issue.path.join('.')}`;
    return fail(field, 'malformed', `is not what a resource.k8s.io/v1 ResourceClaim has there: ${issue?.message ?? 'unreadable'}`);
  }
  const { metadata, status } = parsed.data;
  const devices = status?.allocation?.devices;
  return ok({
    namespace: metadata.namespace,
    name: metadata.name,
    uid: metadata.uid,
    results: status?.allocation === undefined ? null : (devices?.results ?? []),
    configs: devices?.config ?? [],
  });
}

const DECIMAL_SUFFIX: ReadonlyMap<string, number> = new Map([
  ['', 1], ['m', 1e-3], ['k', 1e3], ['M', 1e6], ['G', 1e9], ['T', 1e12], ['P', 1e15], ['E', 1e18],
  ['Ki', 2 ** 10], ['Mi', 2 ** 20], ['Gi', 2 ** 30], ['Ti', 2 ** 40], ['Pi', 2 ** 50], ['Ei', 2 ** 60],
]);
const K8S_QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|([a-zA-Z]*))$/;

/**
 * A Kubernetes resource.Quantity as the API server serializes it (`8Gi`, `80G`, `1500m`,
 * `1e3`, or a bare number), as a number. Here `m` is milli, as in Kubernetes (unlike the
 * user-facing size parser of src/domain, which refuses it as ambiguous).
 */
export function parseK8sQuantity(value: string | number, field: string): Result<number> {
  if (typeof value === 'number') return Number.isFinite(value) ? ok(value) : fail(field, 'malformed', `${value} is not a quantity`);
  const m = K8S_QUANTITY.exec(value.trim());
  const multiplier = m === null ? undefined : m[3] !== undefined ? 10 ** Number(m[3].slice(1)) : DECIMAL_SUFFIX.get(m[4] ?? '');
  if (m === null || multiplier === undefined) {
    return fail(field, 'malformed', `"${value}" is not a Kubernetes quantity; expected e.g. 8Gi, 80G, 30 or 1500m`);
  }
  return ok((m[1] === '-' ? -1 : 1) * Number(m[2]) * multiplier);
}
