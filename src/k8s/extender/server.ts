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
import { ArgsReader, SplitArgs } from './args-reader.js';
import { bindingArgsSchema, describeZodError, preemptionArgsSchema, type ExtenderArgs } from './wire.js';

export interface ExtenderRouteOptions {
  /** Path prefix of the verbs (default `/gpushare-scheduler`). */
  readonly prefix?: string;
  /** The largest body taken, in bytes (default EXTENDER_BODY_LIMIT); a larger one gets 413. */
  readonly bodyLimit?: number;
}

export const DEFAULT_PREFIX = '/gpushare-scheduler';

/** Node lists (extenders not nodeCacheCapable) of a large cluster are big: the body limit the app needs. */
export const EXTENDER_BODY_LIMIT = 256 * 2 ** 20;

export function registerExtenderRoutes(app: FastifyInstance, extender: Extender, options: ExtenderRouteOptions = {}): void {
  void app.register(async (scope) => routes(scope, extender, options));
}

function routes(app: FastifyInstance, extender: Extender, options: ExtenderRouteOptions): void {
  // Bodies taken as bytes (ArgsReader): a filter's 5,000-name list that came before is found
  // by its bytes and not parsed again. Plain JSON.parse for what is parsed (fastify's default
  // parser scans the whole text again for prototype-poisoning keys). Safe here: zod copies what
  // it reads, and nothing merges a body into another object; a list or a pod parsed once is
  // handed to later requests with the same bytes, and nothing on the way mutates them.
  const reader = new ArgsReader();
  app.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: options.bodyLimit ?? EXTENDER_BODY_LIMIT }, (_req, body, done) => {
    try {
      done(null, reader.read(body as Buffer));
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
  const writer = new ReplyWriter();
  const listRoute = (verb: string, encode: (args: ExtenderArgs) => Buffer, answer: (message: string) => unknown): void => {
    app.post(`${prefix}/${verb}`, async (req, reply) => {
      const parsed = reader.check(req.body);
      if (!parsed.ok) return reply.code(400).send(answer(invalid(verb, parsed.error)));
      return reply.code(200).type('application/json; charset=utf-8').send(encode(parsed.value));
    });
  };
  listRoute('filter', (b) => {
    const answer = extender.filterAnswer(b);
    const written = writer.filter(answer);
    // The kube-scheduler's prioritize sends back the names filter passed, as these very bytes.
    if (answer.nodeNames !== null) reader.rememberAnswer(written.bytes.subarray(written.nodeNamesStart, written.nodeNamesEnd), answer.nodeNames);
    return written.bytes;
  }, (Error) => ({ Nodes: null, NodeNames: null, FailedNodes: {}, FailedAndUnresolvableNodes: {}, Error }));
  // HostPriorityList has no Error field: a bad body gets the message as the reply's only text.
  listRoute('prioritize', (b) => writer.priorities(extender.prioritizeAnswer(b)), (Error) => ({ Error }));
  route('bind', bindingArgsSchema, (b) => extender.bind(b), (Error) => ({ Error }));
  route('preempt', preemptionArgsSchema, (b) => extender.preempt(b), (Error) => ({ NodeNameToMetaVictims: {}, Error }));
}
