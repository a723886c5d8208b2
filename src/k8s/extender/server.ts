/**
 * The extender's HTTP routes: POST <prefix>/filter, /prioritize, /bind, /preempt, as the
 * kube-scheduler's KubeSchedulerConfiguration `extenders[].urlPrefix` + `filterVerb` etc. name
 * them. A body that is not the verb's extender/v1 JSON gets 400 with the verb's result type
 * whose Error says what was wrong (the kube-scheduler logs it and retries the pod).
 */
import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { Extender } from './extender.js';
import { bindingArgsSchema, describeZodError, encodeFilterAnswer, encodePriorities, parseExtenderArgs, preemptionArgsSchema, splitNodeNames, type ExtenderArgs } from './wire.js';

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
  // reads, and nothing merges a body into another object. A node list whose text was seen
  // lately (splitNodeNames) is the array made of it then: nothing on the way mutates it.
  const lists = new RecentLists();
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: EXTENDER_BODY_LIMIT }, (_req, body, done) => {
    try {
      const text = body as string;
      const split = splitNodeNames(text);
      if (split === null) return done(null, JSON.parse(text));
      split.rest['NodeNames'] = lists.get(split.namesJson) ?? lists.remember(split.namesJson, JSON.parse(split.namesJson));
      done(null, split.rest);
    } catch (e) {
      done(Object.assign(new Error(`gpushare: the body is not JSON: ${(e as Error).message}`), { statusCode: 400 }), undefined);
    }
  });
  const prefix = (options.prefix ?? DEFAULT_PREFIX).replace(/\/+$/, '');
  const invalid = (verb: string, error: z.ZodError): string => `gpushare: ${describeZodError(error, `${verb} request is not extender/v1 JSON`)}`;
  const route = <S extends z.ZodType>(verb: string, schema: S, handle: (body: z.infer<S>) => unknown, answer: (message: string) => unknown): void => {
    app.post(`${prefix}/${verb}`, async (req, reply) => {
      const parsed = schema.safeParse(req.body);
      if (!parsed.success) return reply.code(400).send(answer(invalid(verb, parsed.error)));
      return reply.code(200).send(await handle(parsed.data));
    });
  };
  // filter and prioritize carry every candidate node both ways: their bodies are checked
  // (parseExtenderArgs) and their answers written (encode*) without an object per node.
  const listRoute = (verb: string, encode: (args: ExtenderArgs) => string, answer: (message: string) => unknown): void => {
    app.post(`${prefix}/${verb}`, async (req, reply) => {
      const parsed = parseExtenderArgs(req.body);
      if (!parsed.ok) return reply.code(400).send(answer(invalid(verb, parsed.error)));
      return reply.code(200).type('application/json; charset=utf-8').send(encode(parsed.value));
    });
  };
  listRoute('filter', (b) => {
    const answer = extender.filterAnswer(b);
    if (answer.nodeNames === null) return encodeFilterAnswer(answer);
    // The kube-scheduler's prioritize sends back the names filter passed, as this very text.
    const namesJson = JSON.stringify(answer.nodeNames);
    lists.remember(namesJson, answer.nodeNames);
    return encodeFilterAnswer(answer, namesJson);
  }, (Error) => ({ Nodes: null, NodeNames: null, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error }));
  // HostPriorityList has no Error field: a bad body gets the message as the reply's only text.
  listRoute('prioritize', (b) => encodePriorities(extender.prioritizeAnswer(b)), (Error) => ({ Error }));
  route('bind', bindingArgsSchema, (b) => extender.bind(b), (Error) => ({ Error }));
  route('preempt', preemptionArgsSchema, (b) => extender.preempt(b), (Error) => ({ NodeNameToMetaVictims: {}, Error }));
}

/**
 * The last few node lists by their JSON text (the whole cluster's, which filter gets pod after
 * pod, and each filter's answer, which its prioritize sends back): a text seen again is not
 * parsed again. Compared whole: a hit costs one string comparison.
 */
class RecentLists {
  private readonly entries: { text: string; names: unknown }[] = [];

  get(text: string): unknown {
    for (const e of this.entries) if (e.text.length === text.length && e.text === text) return e.names;
    return undefined;
  }

  remember(text: string, names: unknown): unknown {
    this.entries.unshift({ text, names });
    if (this.entries.length > 4) this.entries.pop();
    return names;
  }
}
