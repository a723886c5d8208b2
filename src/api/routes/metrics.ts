/**
 * GET /metrics: the Prometheus exporter (src/monitor/metrics), behind the API's own
 * authentication. On a Unix socket the caller is the local admin; on TCP it needs a bearer token
 * of the admin role (Prometheus sends one: `authorization: {credentials_file: ...}`), because
 * the figures name every tenant's tasks, which a user token may not see.
 */
import { requireAdmin } from '../authorize.js';
import type { Api } from './shared.js';

/** What the route needs of the exporter (the API does not import the monitor). */
export interface MetricsEndpoint {
  render(accept: string | undefined): Promise<{ readonly contentType: string; readonly body: string }>;
}

export function registerMetricsRoutes(api: Api, metrics: MetricsEndpoint): void {
  api.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    requireAdmin(req.principal, 'reading /metrics');
    const { contentType, body } = await metrics.render(req.headers.accept);
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}
