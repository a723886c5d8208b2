/** /v1/events: the task event log, as a page or followed live. */
import { z } from 'zod';
import { EventSchema, EventsQuerySchema } from '../../contract/schemas.js';
import { canSeeEvent, eventScope, eventView } from '../authorize.js';
import { eventStream } from '../streams.js';
import { errors, taskLookups, type Api, type RouteContext } from './shared.js';

export function registerEventRoutes(api: Api, { daemon }: RouteContext): void {
  const { taskOf, tenantOf } = taskLookups(daemon);

  api.get('/v1/events', { schema: { summary: 'Task events after `since`; follow=1 streams them as NDJSON', querystring: EventsQuerySchema, response: { 200: z.array(EventSchema), ...errors } } }, async (req, reply) => {
    const scope = eventScope(req.principal);
    if (req.query.follow) {
      const stream = eventStream(daemon, req.query.since ?? 0, scope, (e) => canSeeEvent(req.principal, e, taskOf), (e) => eventView(req.principal, e, tenantOf));
      req.raw.on('close', () => stream.destroy());
      return reply.type('application/x-ndjson').send(stream as never);
    }
    return daemon.events(req.query.since ?? 0, req.query.limit ?? 1000, scope).map((e) => eventView(req.principal, e, tenantOf));
  });
}
