/**
 * The scheduler extender's wire format: k8s.io/kube-scheduler/extender/v1, whose Go structs
 * carry no json tags, so every field travels under its Go name (`Pod`, `NodeNames`,
 * `FailedAndUnresolvableNodes`, ...). Requests are validated here with zod; the pod inside is
 * checked only as far as the extender reads it (hami/pod-request.ts reads the rest).
 */
import { z } from 'zod';

/** extender/v1's MaxExtenderPriority: prioritize answers 0..10. */
export const MAX_EXTENDER_PRIORITY = 10;
export const MIN_EXTENDER_PRIORITY = 0;

const quantity = z.union([z.string(), z.number()]);
const resources = z.looseObject({ limits: z.record(z.string(), quantity).nullish(), requests: z.record(z.string(), quantity).nullish() }).nullish();
const container = z.looseObject({ name: z.string(), resources });

/** A v1.Pod as far as the extender reads it (other fields pass through untouched). */
export const podSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: z.looseObject({
    name: z.string().optional(),
    generateName: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    annotations: z.record(z.string(), z.string()).nullish(),
  }),
  spec: z.looseObject({
    containers: z.array(container).min(1),
    initContainers: z.array(container).nullish(),
    nodeName: z.string().optional(),
    schedulerName: z.string().optional(),
    priority: z.number().int().nullish(),
    priorityClassName: z.string().nullish(),
  }),
  status: z.looseObject({ phase: z.string().optional() }).nullish(),
});

const nodeList = z.looseObject({ items: z.array(z.looseObject({ metadata: z.looseObject({ name: z.string() }) })).nullish() });

/** ExtenderArgs: the body of filter and prioritize. NodeNames when nodeCacheCapable, else Nodes. */
export const extenderArgsSchema = z.looseObject({
  Pod: podSchema,
  Nodes: nodeList.nullish(),
  NodeNames: z.array(z.string()).nullish(),
});
export type ExtenderArgs = z.infer<typeof extenderArgsSchema>;

/** FailedNodesMap: node name -> why it failed. */
export type FailedNodesMap = Record<string, string>;

/** ExtenderFilterResult. */
export interface ExtenderFilterResult {
  Nodes: { items: unknown[] } | null;
  NodeNames: string[] | null;
  FailedNodes: FailedNodesMap;
  FailedAndUnresolvableNodes: FailedNodesMap;
  Error: string;
}

/** HostPriority; prioritize answers a HostPriorityList (an array of these). */
export interface HostPriority {
  Host: string;
  Score: number;
}

/** ExtenderBindingArgs. */
export const bindingArgsSchema = z.looseObject({
  PodName: z.string().min(1),
  PodNamespace: z.string().min(1),
  PodUID: z.string().min(1),
  Node: z.string().min(1),
});
export type ExtenderBindingArgs = z.infer<typeof bindingArgsSchema>;

/** ExtenderBindingResult: an empty Error means bound. */
export interface ExtenderBindingResult {
  Error: string;
}

const metaVictims = z.looseObject({ Pods: z.array(z.looseObject({ UID: z.string() })).nullish(), NumPDBViolations: z.number().int().nullish() });
const victims = z.looseObject({ Pods: z.array(podSchema).nullish(), NumPDBViolations: z.number().int().nullish() });

/** ExtenderPreemptionArgs: the kube-scheduler's candidate victims, full pods or (nodeCacheCapable) UIDs. */
export const preemptionArgsSchema = z.looseObject({
  Pod: podSchema,
  NodeNameToVictims: z.record(z.string(), victims.nullable()).nullish(),
  NodeNameToMetaVictims: z.record(z.string(), metaVictims.nullable()).nullish(),
});
export type ExtenderPreemptionArgs = z.infer<typeof preemptionArgsSchema>;

export interface MetaVictims {
  Pods: { UID: string }[];
  NumPDBViolations: number;
}

/** ExtenderPreemptionResult. */
export interface ExtenderPreemptionResult {
  NodeNameToMetaVictims: Record<string, MetaVictims>;
}

/** The first problem of a failed parse, as one sentence naming the field. */
export function describeZodError(e: z.ZodError, what: string): string {
  const i = e.issues[0];
  return `${what}: ${i ? `${i.path.join('.') || '(body)'}: ${i.message}` : 'invalid'}`;
}
