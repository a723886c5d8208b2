/** /v1/gpus: the GPUs and the slices placed on them. */
import { GpusResponseSchema, type GpusResponse } from '../../contract/schemas.js';
import { visibleGpus } from '../authorize.js';
import type { Api, RouteContext } from './shared.js';

export function registerGpuRoutes(api: Api, { daemon, backend }: RouteContext): void {
  api.get('/v1/gpus', { schema: { summary: 'GPUs and the slices placed on them', response: { 200: GpusResponseSchema } } }, async (req) => ({
    backend: backend.kind,
    description: backend.description,
    gpus: visibleGpus(req.principal, daemon.gpus()) as unknown as GpusResponse['gpus'],
  }));
}
