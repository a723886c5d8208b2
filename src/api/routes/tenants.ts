/** /v1/tenants: tenants and their quotas; changes are the admin's. */
import { z } from 'zod';
import { CreateTenantSchema, TenantNameParamsSchema, TenantSchema, UpdateTenantSchema, type TenantBody } from '../../contract/schemas.js';
import { canSeeTenant, requireAdmin, visibleTenantName } from '../authorize.js';
import { errors, type Api, type RouteContext } from './shared.js';

export function registerTenantRoutes(api: Api, { daemon }: RouteContext): void {
  const tenantsSummary = 'Tenants with their quotas and what their running tasks hold (a user sees its own tenant only)';
  api.get('/v1/tenants', { schema: { summary: tenantsSummary, response: { 200: z.array(TenantSchema), ...errors } } }, async (req) =>
    daemon.tenants().filter((t) => canSeeTenant(req.principal, t.name)) as TenantBody[],
  );

  api.get('/v1/tenants/:name', { schema: { summary: 'One tenant', params: TenantNameParamsSchema, response: { 200: TenantSchema, ...errors } } }, async (req) =>
    daemon.tenant(visibleTenantName(req.principal, req.params.name)) as TenantBody,
  );

  api.post(
    '/v1/tenants',
    { config: { action: 'tenant.create' }, schema: { summary: 'Create a tenant, optionally with a quota (admin)', body: CreateTenantSchema, response: { 201: TenantSchema, ...errors } } },
    async (req, reply) => {
      requireAdmin(req.principal, 'creating a tenant');
      return reply.status(201).send(daemon.createTenant(req.body.name, req.body.quota ?? {}, req.principal) as TenantBody);
    },
  );

  api.patch(
    '/v1/tenants/:name',
    { config: { action: 'tenant.set-quota' }, schema: { summary: "Change a tenant's quota: null removes a limit, an absent field keeps it (admin)", params: TenantNameParamsSchema, body: UpdateTenantSchema, response: { 200: TenantSchema, ...errors } } },
    async (req) => {
      requireAdmin(req.principal, "changing a tenant's quota");
      return daemon.setQuota(req.params.name, req.body.quota, req.principal) as TenantBody;
    },
  );

  api.delete(
    '/v1/tenants/:name',
    { config: { action: 'tenant.delete' }, schema: { summary: 'Delete a tenant and its quota; refused while it has live tasks (admin)', params: TenantNameParamsSchema, response: { 204: z.null(), ...errors } } },
    async (req, reply) => {
      requireAdmin(req.principal, 'deleting a tenant');
      daemon.deleteTenant(req.params.name, req.principal);
      return reply.status(204).send(null);
    },
  );
}
