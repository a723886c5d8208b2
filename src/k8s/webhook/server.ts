/**
 * The webhook's HTTP route: POST <path> with an AdmissionReview v1, answered with one. A body
 * that is not an AdmissionReview v1 gets 400 and a message (the API server then applies the
 * webhook's failurePolicy).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { describeZodError } from '../extender/wire.js';
import { ADMISSION_API_VERSION, admit, type Inventory, type WebhookOptions } from './admission.js';

const groupVersionKind = z.looseObject({ group: z.string(), version: z.string(), kind: z.string() });

/** AdmissionReview v1 as the API server sends it (fields the webhook does not read pass through). */
export const admissionReviewSchema = z.looseObject({
  apiVersion: z.literal(ADMISSION_API_VERSION),
  kind: z.literal('AdmissionReview'),
  request: z.looseObject({
    uid: z.string().min(1),
    kind: groupVersionKind,
    resource: z.looseObject({ group: z.string(), version: z.string(), resource: z.string() }),
    operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
    namespace: z.string().optional(),
    name: z.string().optional(),
    object: z.unknown().optional(),
    oldObject: z.unknown().optional(),
    dryRun: z.boolean().optional(),
  }),
});

export const DEFAULT_WEBHOOK_PATH = '/mutate-pods';

export function registerWebhookRoute(app: FastifyInstance, inventory: Inventory, options: WebhookOptions & { path?: string } = {}): void {
  app.post(options.path ?? DEFAULT_WEBHOOK_PATH, async (req, reply) => {
    const parsed = admissionReviewSchema.safeParse(req.body);
    if (!parsed.success) return reply.code(400).send({ message: `gpushare: ${describeZodError(parsed.error, 'not an admission.k8s.io/v1 AdmissionReview')}` });
    return reply.code(200).send(admit(parsed.data.request, inventory, options));
  });
}
