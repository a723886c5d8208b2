/** /v1/tokens: bearer tokens made, listed and revoked (admin). */
import { z } from 'zod';
import { parseDuration } from '../../contract/duration.js';
import { CreatedTokenSchema, CreateTokenSchema, TokenIdParamsSchema, TokenSchema } from '../../contract/schemas.js';
import { shown } from '../../contract/shown.js';
import { ErrorCodes, GsError, PRIORITY_LEVELS } from '../../domain/index.js';
import type { TokenAuthority } from '../../node/tokens.js';
import { requireAdmin } from '../authorize.js';
import { errors, type Api, type RouteContext } from './shared.js';

export function registerTokenRoutes(api: Api, { tokens }: RouteContext): void {
  const authority = (): TokenAuthority => {
    if (!tokens) throw new GsError(ErrorCodes.conflict, 'this daemon keeps no token records');
    return tokens;
  };

  api.get('/v1/tokens', { schema: { summary: 'Bearer tokens, from the config file and made through the API, with their state (admin)', response: { 200: z.array(TokenSchema), ...errors } } }, async (req) => {
    requireAdmin(req.principal, 'listing tokens');
    return authority().list();
  });

  api.post(
    '/v1/tokens',
    { config: { action: 'token.create' }, schema: { summary: 'Make a bearer token; the answer holds the secret, once (admin)', body: CreateTokenSchema, response: { 201: CreatedTokenSchema, ...errors } } },
    async (req, reply) => {
      requireAdmin(req.principal, 'making a token');
      const { expires, maxPriority } = req.body;
      const lifetimeMs = expires === undefined ? null : parseDuration(expires);
      if (lifetimeMs === null && expires !== undefined) throw new GsError(ErrorCodes.invalidArgument, `expires: "${shown(expires)}" is not a length of time; expected a whole number and s, m, h, d or w (30d), at most ten years`);
      const priority = maxPriority === undefined ? null : typeof maxPriority === 'number' ? maxPriority : PRIORITY_LEVELS[maxPriority];
      const { token, view } = authority().create({ tenant: req.body.tenant, role: req.body.role ?? 'user', lifetimeMs, maxPriority: priority }, req.principal);
      return reply.status(201).send({ ...view, token });
    },
  );

  api.post(
    '/v1/tokens/:id/revoke',
    { config: { action: 'token.revoke' }, schema: { summary: 'Revoke a token (config or API) by its id or a unique prefix: refused from the next request on (admin)', params: TokenIdParamsSchema, response: { 200: TokenSchema, ...errors } } },
    async (req) => {
      requireAdmin(req.principal, 'revoking a token');
      return authority().revoke(req.params.id, req.principal);
    },
  );
}
