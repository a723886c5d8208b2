/**
 * /v1/alerts: alerts firing and recently resolved, as a list or followed live (NDJSON); and
 * /v1/silences: silences, which an admin makes and ends. Anyone may list silences (they say why
 * an alert is quiet); a user sees the alerts of its tenant's tasks and of the GPUs.
 */
import { PassThrough } from 'node:stream';
import { AlertsQuerySchema, AlertsResponseSchema, CreateSilenceSchema, SilenceIdParamsSchema, SilenceSchema, SilencesQuerySchema, SilencesResponseSchema, type AlertSource } from '../../contract/alerts.js';
import type { AlertEvent } from '../../contract/monitor.js';
import type { Principal } from '../../contract/principal.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { canSeeAlert, requireAdmin } from '../authorize.js';
import { errors, type Api, type RouteContext } from './shared.js';

/** The caller, once it is known to be an admin (requireAdmin refuses anyone else). */
function admin(principal: Principal, what: string): Principal {
  requireAdmin(principal, what);
  return principal;
}

export function registerAlertRoutes(api: Api, { alerts }: RouteContext): void {
  // Registered either way, so the OpenAPI document is the same with or without alerts (tests build the API alone).
  const book = (): AlertSource => {
    if (!alerts) throw new GsError(ErrorCodes.notFound, 'this daemon keeps no alerts');
    return alerts;
  };

  api.get(
    '/v1/alerts',
    { schema: { summary: 'Alerts: firing ones (state=firing, the default), resolved ones kept, or all; since: fired or resolved at or after (epoch ms); follow=1 streams each as it fires or resolves (NDJSON, after those listed)', querystring: AlertsQuerySchema, response: { 200: AlertsResponseSchema, ...errors } } },
    async (req, reply) => {
      const source = book();
      const visible = (a: AlertEvent): boolean => canSeeAlert(req.principal, a);
      const query = { state: req.query.state, since: req.query.since };
      if (!req.query.follow) return { alerts: source.list(query).filter(visible) };
      const out = new PassThrough();
      // Followed first, listed second: nothing that changes in between is missed (an alert may come twice).
      const pending: AlertEvent[] = [];
      let live = false;
      const write = (a: AlertEvent): void => {
        if (visible(a)) out.write(`${JSON.stringify(a)}\n`);
      };
      const unfollow = source.follow((a) => (live ? write(a) : pending.push(a)));
      out.on('close', unfollow);
      req.raw.on('close', () => out.destroy());
      for (const a of source.list(query).reverse()) write(a);
      pending.forEach(write);
      live = true;
      return reply.type('application/x-ndjson').send(out as never);
    },
  );

  api.get('/v1/silences', { schema: { summary: 'Silences in force; all=1 those ended in the last week too', querystring: SilencesQuerySchema, response: { 200: SilencesResponseSchema, ...errors } } }, async (req) => ({
    silences: book().silences(req.query.all ?? false),
  }));

  api.post(
    '/v1/silences',
    { config: { action: 'silence.create' }, schema: { summary: 'Silence the alerts matching every matcher until `until` (admin): listed with silenced: true, not sent to webhooks', body: CreateSilenceSchema, response: { 201: SilenceSchema, ...errors } } },
    async (req, reply) => reply.status(201).send(book().addSilence({ matchers: req.body.matchers, until: req.body.until, comment: req.body.comment }, admin(req.principal, 'silencing alerts'))),
  );

  api.delete(
    '/v1/silences/:id',
    { config: { action: 'silence.remove' }, schema: { summary: 'End a silence now (admin)', params: SilenceIdParamsSchema, response: { 200: SilenceSchema, ...errors } } },
    async (req) => book().removeSilence(req.params.id, admin(req.principal, 'ending a silence')),
  );
}
