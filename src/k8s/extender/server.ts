/**
 * The extender's HTTP routes: POST <prefix>/filter, /prioritize, /bind, /preempt, as the
 * kube-scheduler's KubeSchedulerConfiguration `extenders[].urlPrefix` + `filterVerb` etc. name
 * them. A body that is not the verb's extender/v1 JSON gets 400 with the verb's result type
 * whose Error says what was wrong (the kube-scheduler logs it and retries the pod).
 */
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { Extender } from './extender.js';
import { ReplyWriter } from './reply-bytes.js';
import { bindingArgsSchema, describeZodError, parseExtenderArgs, parseRest, preemptionArgsSchema, splitNodeNamesText, type ExtenderArgs } from './wire.js';

export interface ExtenderRouteOptions {
  /** Path prefix of the verbs (default `/gpushare-scheduler`). */
  readonly prefix?: string;
}

export const DEFAULT_PREFIX = '/gpushare-scheduler';

/** Node lists (extenders not nodeCacheCapable) of a large cluster are big: the body limit the app needs. */
export const EXTENDER_BODY_LIMIT = 256 * 2 ** 20;

export function registerExtenderRoutes(app: FastifyInstance, extender: Extender, options: ExtenderRouteOptions = {}): void {
  void app.register(async (scope) => routes(scope, extender, options));
}

function routes(app: FastifyInstance, extender: Extender, options: ExtenderRouteOptions): void {
  // Plain JSON.parse for these bodies (fastify's default parser scans the whole text again for
  // prototype-poisoning keys: a 5,000-name body costs twice). Safe here: zod copies what it
  // reads, and nothing merges a body into another object. An ExtenderArgs body laid out as Go
  // writes it comes apart (SplitArgs): a node list or a rest (the pod) whose text was seen
  // lately is the object made of it then, validated then: nothing on the way mutates them.
  const lists = new RecentTexts();
  const rests = new RecentTexts();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: EXTENDER_BODY_LIMIT }, (_req, body, done) => {
    try {
      const text = body as string;
      const split = splitNodeNamesText(text);
      const rest = split === null ? null : (rests.get(split.restJson) ?? rests.remember(split.restJson, parseRest(split.restJson)));
      // Not laid out so, or the rest is not a JSON object: parsed whole (and its error said).
      if (split === null || rest === null) return done(null, JSON.parse(text));
      const names = lists.get(split.namesJson) ?? lists.remember(split.namesJson, frozen(JSON.parse(split.namesJson)));
      done(null, new SplitArgs(rest as Record<string, unknown>, names));
    } catch (e) {
      done(Object.assign(new Error(`gpushare: the body is not JSON: ${(e as Error).message}`), { statusCode: 400 }), undefined);
    }
  });
  const prefix = (options.prefix ?? DEFAULT_PREFIX).replace(/\/+$/, '');
  const invalid = (verb: string, error: z.ZodError): string => `gpushare: ${describeZodError(error, `${verb} request is not extender/v1 JSON`)}`;
  const route = <S extends z.ZodType>(verb: string, schema: S, handle: (body: z.infer<S>) => unknown, answer: (message: string) => unknown): void => {
    app.post(`${prefix}/${verb}`, async (req, reply) => {
      const parsed = schema.safeParse(req.body instanceof SplitArgs ? req.body.whole() : req.body);
      if (!parsed.success) return reply.code(400).send(answer(invalid(verb, parsed.error)));
      return reply.code(200).send(await handle(parsed.data));
    });
  };
  // filter and prioritize carry every candidate node both ways: their bodies are checked
  // (parseExtenderArgs, once per pod text) and their answers written as bytes (ReplyWriter)
  // without an object per node.
  const checked = new CheckedArgs();
  const writer = new ReplyWriter();
  const listRoute = (verb: string, encode: (args: ExtenderArgs) => Buffer, answer: (message: string) => unknown): void => {
    app.post(`${prefix}/${verb}`, async (req, reply) => {
      const parsed = req.body instanceof SplitArgs ? checked.of(req.body) : parseExtenderArgs(req.body);
      if (!parsed.ok) return reply.code(400).send(answer(invalid(verb, parsed.error)));
      return reply.code(200).type('application/json; charset=utf-8').send(encode(parsed.value));
    });
  };
  listRoute('filter', (b) => {
    const answer = extender.filterAnswer(b);
    const written = writer.filter(answer);
    // The kube-scheduler's prioritize sends back the names filter passed, as this very text.
    if (answer.nodeNames !== null) lists.remember(written.nodeNamesText ?? written.bytes.toString('utf8', written.nodeNamesStart, written.nodeNamesEnd), answer.nodeNames);
    return written.bytes;
  }, (Error) => ({ Nodes: null, NodeNames: null, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error }));
  // HostPriorityList has no Error field: a bad body gets the message as the reply's only text.
  listRoute('prioritize', (b) => writer.priorities(extender.prioritizeAnswer(b)), (Error) => ({ Error }));
  route('bind', bindingArgsSchema, (b) => extender.bind(b), (Error) => ({ Error }));
  route('preempt', preemptionArgsSchema, (b) => extender.preempt(b), (Error) => ({ NodeNameToMetaVictims: {}, Error }));
}

/**
 * A parsed node list, frozen: the same array is handed to every request whose list has its
 * text, so nothing may change it (and the extender's kept verdicts know it by the object).
 */
function frozen(list: unknown): unknown {
  return Array.isArray(list) ? Object.freeze(list) : list;
}

/** An ExtenderArgs body taken apart (splitNodeNamesText): the rest parsed, and the node list. */
class SplitArgs {
  constructor(
    readonly rest: Record<string, unknown>,
    readonly names: unknown,
  ) {}

  /** The body as one object, as JSON.parse of the whole text gives it. */
  whole(): Record<string, unknown> {
    return { ...this.rest, NodeNames: this.names };
  }
}

type Checked = ReturnType<typeof parseExtenderArgs>;

/**
 * parseExtenderArgs of split bodies, remembered per rest and per list object (the same objects
 * come back while their texts do, RecentTexts): the pod is validated once for its filter and
 * its prioritize, a list of names once however many pods it comes with.
 */
class CheckedArgs {
  private readonly rests = new WeakMap<object, Checked>();
  private readonly stringLists = new WeakSet<object>();

  of(body: SplitArgs): Checked {
    const { rest, names } = body;
    if (!Array.isArray(names)) return parseExtenderArgs(body.whole());
    if (!this.stringLists.has(names)) {
      // A name that is not a string: the schema's own error says which.
      if (!names.every((n) => typeof n === 'string')) return parseExtenderArgs(body.whole());
      this.stringLists.add(names);
    }
    let checked = this.rests.get(rest);
    if (checked === undefined) this.rests.set(rest, (checked = parseExtenderArgs({ ...rest, NodeNames: null })));
    return checked.ok ? { ok: true, value: { ...checked.value, NodeNames: names as string[] } } : checked;
  }
}

/**
 * The last few texts and what was made of each: node lists (the whole cluster's, which filter
 * gets pod after pod, and each filter's answer, which its prioritize sends back) and pods (the
 * same pod's filter and prioritize). A text seen again is not parsed again. Compared whole: a
 * hit costs one string comparison.
 */
class RecentTexts {
  private readonly entries: { text: string; made: unknown }[] = [];

  get(text: string): unknown {
    const { entries } = this;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k] as { text: string; made: unknown };
      if (e.text.length !== text.length || e.text !== text) continue;
      // Most recent first: the cluster's list, asked pod after pod, outlives the answers between.
      if (k > 0) entries.unshift(...entries.splice(k, 1));
      return e.made;
    }
    return undefined;
  }

  remember(text: string, made: unknown): unknown {
    // A kept filter answer comes back unchanged pod after pod: one entry, not one a pod.
    const first = this.entries[0];
    if (first !== undefined && first.made === made && first.text === text) return made;
    this.entries.unshift({ text, made });
    if (this.entries.length > 4) this.entries.pop();
    return made;
  }
}
