/**
 * The scheduler extender's wire format: k8s.io/kube-scheduler/extender/v1, whose Go structs
 * carry no json tags, so every field travels under its Go name (`Pod`, `NodeNames`,
 * `FailedAndUnresolvableNodes`, ...). Requests are validated here with zod; the pod inside is
 * checked only as far as the extender reads it (hami/pod-request.ts reads the rest).
 */
import { z } from 'zod';
import type { FilterAnswer, NodeReasons, PriorityAnswer } from './answer.js';
import { ReplyWriter } from './reply-bytes.js';

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

export type { FilterAnswer, NodeReasons, PriorityAnswer } from './answer.js';

/** The answer as extender/v1's ExtenderFilterResult object. */
export function filterResultOf(a: FilterAnswer): ExtenderFilterResult {
  return { Nodes: a.nodes, NodeNames: a.nodeNames === null ? null : [...a.nodeNames], FailedNodes: recordOf(a.failed), FailedAndUnresolvableNodes: recordOf(a.unresolvable), Error: '' };
}

/** The answer as a HostPriorityList. */
export function hostPrioritiesOf(a: PriorityAnswer): HostPriority[] {
  const out = new Array<HostPriority>(a.hosts.length);
  for (let k = 0; k < a.hosts.length; k++) out[k] = { Host: a.hosts[k] as string, Score: a.scores[k] as number };
  return out;
}

/**
 * The ExtenderFilterResult JSON of `a`: what JSON.stringify(filterResultOf(a)) gives, written
 * directly (ReplyWriter: no object per node).
 */
export function encodeFilterAnswer(a: FilterAnswer): string {
  return new ReplyWriter().filter(a).bytes.toString('utf8');
}

/** The HostPriorityList JSON of `a`. */
export function encodePriorities(a: PriorityAnswer): string {
  return new ReplyWriter().priorities(a).toString('utf8');
}

function recordOf(r: NodeReasons): FailedNodesMap {
  // A dictionary from the start: node names are not a shape V8 should make a class of.
  const out = Object.create(null) as FailedNodesMap;
  for (let k = 0; k < r.names.length; k++) out[r.names[k] as string] = r.reasons[k] as string;
  return out;
}

const NODE_NAMES_MEMBER = Buffer.from(',"NodeNames":[', 'latin1');
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** Where a body's parts lie (splitNodeNamesAt): the rest ends at restEnd (its `}` dropped), the list is namesStart..namesEnd, brackets included. */
export interface NodeNamesAt {
  readonly restEnd: number;
  readonly namesStart: number;
  readonly namesEnd: number;
}

/**
 * ExtenderArgs bytes taken apart where the kube-scheduler's Go encoder lays them out (fields
 * in struct order, no spaces: `{"Pod":...,"Nodes":null,"NodeNames":[...]}`): where the rest
 * ends and where the node list's bytes lie, nothing parsed. The same list comes pod after pod
 * (filter) or is the one filter just answered (prioritize), and parsing 5,000 names is most of
 * such a request: the caller compares the list's bytes with the lists it knows and parses only
 * a new one (args-reader.ts). Null where the body does not end with that member. The member
 * found is the last `,"NodeNames":[` (its quote follows a comma, so it is never inside a JSON
 * string); where it is not the top level's (a pod may carry one deeper), the rest or the list
 * is not JSON on its own and the caller parses the body whole. Whole, the body is the rest
 * with one more member, so parsing the parts gives the same object.
 */
export function splitNodeNamesAt(body: Uint8Array): NodeNamesAt | null {
  let end = body.length;
  while (end > 0 && SPACE.has(body[end - 1] as number)) end--;
  if (end < 2 || body[end - 1] !== 0x7d /* } */ || body[end - 2] !== 0x5d /* ] */) return null;
  const at = Buffer.from(body.buffer, body.byteOffset, end).lastIndexOf(NODE_NAMES_MEMBER);
  if (at <= 0) return null;
  return { restEnd: at, namesStart: at + NODE_NAMES_MEMBER.length - 1, namesEnd: end - 1 };
}

/**
 * splitNodeNamesAt with the rest parsed: the rest as an object and the list's bytes. Null where
 * the body is not laid out so or the rest is not a JSON object.
 */
export function splitNodeNames(body: Uint8Array): { readonly rest: Record<string, unknown>; readonly names: Buffer } | null {
  const at = splitNodeNamesAt(body);
  if (at === null) return null;
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.length);
  const rest = parseRest(bytes, at);
  return rest === null ? null : { rest, names: bytes.subarray(at.namesStart, at.namesEnd) };
}

/** A split body's rest as an object (its `}` put back), or null where it is not a JSON object. */
export function parseRest(body: Buffer, at: NodeNamesAt): Record<string, unknown> | null {
  let rest: unknown;
  try {
    rest = JSON.parse(`${body.toString('utf8', 0, at.restEnd)}}`);
  } catch {
    return null;
  }
  return typeof rest === 'object' && rest !== null && !Array.isArray(rest) ? (rest as Record<string, unknown>) : null;
}

/**
 * ExtenderArgs from a parsed body, as extenderArgsSchema would give it, but with NodeNames
 * checked by a loop of its own: zod's per-element checks cost more than the rest of a
 * 5,000-name filter.
 */
export function parseExtenderArgs(body: unknown): { readonly ok: true; readonly value: ExtenderArgs } | { readonly ok: false; readonly error: z.ZodError } {
  const names = typeof body === 'object' && body !== null ? (body as { NodeNames?: unknown }).NodeNames : undefined;
  if (!Array.isArray(names)) {
    const parsed = extenderArgsSchema.safeParse(body);
    return parsed.success ? { ok: true, value: parsed.data } : { ok: false, error: parsed.error };
  }
  // A name that is not a string: the schema's own error says which.
  const parsed = names.every((n) => typeof n === 'string') ? extenderArgsSchema.safeParse({ ...(body as object), NodeNames: null }) : extenderArgsSchema.safeParse(body);
  if (!parsed.success) return { ok: false, error: parsed.error };
  return { ok: true, value: { ...parsed.data, NodeNames: names as string[] } };
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
