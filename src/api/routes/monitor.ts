/**
 * /v1/monitor: the monitor's samples (src/contract/monitor.ts), the newest or streamed as NDJSON,
 * as the caller may see them (authorize.ts visibleSample). The dashboard reads the stream with
 * events=1: one connection per open page (browsers allow six per origin over HTTP/1.1) carries
 * the samples, the task events that tell it when to re-read the lists, and the alerts as they
 * fire or resolve.
 */
import { z } from 'zod';
import type { MonitorSample } from '../../contract/monitor.js';
import type { Principal } from '../../contract/principal.js';
import { MonitorStreamQuerySchema } from '../../contract/schemas.js';
import { canSeeAlert, canSeeEvent, eventView, viewerKey, visibleSample } from '../authorize.js';
import { sampleStream } from '../streams.js';
import { errors, RawJson, taskLookups, type Api, type RouteContext } from './shared.js';

const SampleResponseSchema = z
  .object({ sample: z.looseObject({}).nullable().describe('A MonitorSample (src/contract/monitor.ts); null before the first sample, or with no monitor') })
  .meta({ id: 'MonitorSampleResponse' });

export function registerMonitorRoutes(api: Api, { daemon, samples, alerts }: RouteContext): void {
  const { taskOf, tenantOf } = taskLookups(daemon);
  // A sample's JSON per viewer (one for admins, one per tenant), made once however many streams
  // and requests read it; cleared when a newer sample comes.
  let cachedFor: MonitorSample | null = null;
  const cached = new Map<string, string>();
  const json = (sample: MonitorSample, principal: Principal): string => {
    if (sample !== cachedFor) {
      cachedFor = sample;
      cached.clear();
    }
    const key = viewerKey(principal);
    let text = cached.get(key);
    if (text === undefined) {
      text = JSON.stringify(visibleSample(principal, sample, tenantOf));
      cached.set(key, text);
    }
    return text;
  };

  api.get('/v1/monitor/sample', { schema: { summary: "The monitor's newest sample (GPUs, slices, queue), as the caller may see it: a user token sees its own tenant's slices only", response: { 200: SampleResponseSchema, ...errors } } }, async (req) => {
    const newest = samples?.latest() ?? null;
    return new RawJson(`{"sample":${newest === null ? 'null' : json(newest, req.principal)}}`) as never;
  });

  api.get(
    '/v1/monitor/stream',
    {
      schema: {
        summary:
          "The monitor's samples as NDJSON, one MonitorSample per line: the newest at once, then each new one (about one a second), as the caller may see them. events=1: lines {\"sample\": ...} and, as they happen, {\"event\": ...} with the caller's task events and {\"alert\": ...} with each alert the caller may see as it fires or resolves (one connection for a page that needs all three)",
        querystring: MonitorStreamQuerySchema,
        response: errors,
      },
    },
    async (req, reply) => {
      const principal = req.principal;
      const source = samples ?? { latest: () => null, subscribe: () => () => {} };
      const stream = req.query.events
        ? sampleStream(source, (sample) => `{"sample":${json(sample, principal)}}`, (write) => {
            const stopEvents = daemon.onEvent((e) => {
              if (canSeeEvent(principal, e, taskOf)) write(`{"event":${JSON.stringify(eventView(principal, e, tenantOf))}}`);
            });
            const stopAlerts = alerts?.follow((a) => {
              if (canSeeAlert(principal, a)) write(`{"alert":${JSON.stringify(a)}}`);
            });
            return () => {
              stopEvents();
              stopAlerts?.();
            };
          })
        : sampleStream(source, (sample) => json(sample, principal));
      req.raw.on('close', () => stream.destroy());
      return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(stream as never);
    },
  );
}
