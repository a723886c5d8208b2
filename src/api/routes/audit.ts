/** /v1/audit: the audit log (admin). */
import { z } from 'zod';
import { AuditQuerySchema, AuditRecordSchema } from '../../contract/schemas.js';
import { requireAdmin } from '../authorize.js';
import { errors, type Api, type RouteContext } from './shared.js';

export function registerAuditRoutes(api: Api, { daemon }: RouteContext): void {
  api.get('/v1/audit', { schema: { summary: 'The audit log: every change and refused change, oldest first (admin)', querystring: AuditQuerySchema, response: { 200: z.array(AuditRecordSchema), ...errors } } }, async (req) => {
    requireAdmin(req.principal, 'reading the audit log');
    return daemon.auditLog(req.query.since ?? 0, req.query.limit ?? 1000);
  });
}
