/** /v1/gpus: the GPUs and the slices placed on them; an admin's cordon and uncordon. */
import { CordonGpuSchema, GpuHealthSchema, GpuParamsSchema, GpusResponseSchema, type GpuHealthBody, type GpusResponse } from '../../contract/schemas.js';
import type { GpuWithSlices } from '../../contract/gpus.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { shown } from '../../contract/shown.js';
import { requireAdmin, visibleGpus } from '../authorize.js';
import { errors, type Api, type RouteContext } from './shared.js';

export function registerGpuRoutes(api: Api, { daemon, backend }: RouteContext): void {
  api.get('/v1/gpus', { schema: { summary: 'GPUs, the slices placed on them, and their cordons and faults', response: { 200: GpusResponseSchema } } }, async (req) => ({
    backend: backend.kind,
    description: backend.description,
    gpus: visibleGpus(req.principal, daemon.gpus()) as unknown as GpusResponse['gpus'],
  }));

  api.post(
    '/v1/gpus/:gpu/cordon',
    { config: { action: 'gpu.cordon' }, schema: { summary: 'Cordon a GPU: no new placements on it, running tasks untouched (admin)', params: GpuParamsSchema, body: CordonGpuSchema, response: { 200: GpuHealthSchema, ...errors } } },
    async (req) => {
      requireAdmin(req.principal, 'cordoning a GPU');
      const gpu = findGpu(daemon.gpus(), req.params.gpu);
      return healthBody(gpu, daemon.cordonGpu(gpu.uuid, req.principal, req.body.note ?? null));
    },
  );

  api.post(
    '/v1/gpus/:gpu/uncordon',
    { config: { action: 'gpu.uncordon' }, schema: { summary: "Uncordon a GPU and clear its fault: it takes new placements again (admin)", params: GpuParamsSchema, response: { 200: GpuHealthSchema, ...errors } } },
    async (req) => {
      requireAdmin(req.principal, 'uncordoning a GPU');
      const gpu = findGpu(daemon.gpus(), req.params.gpu);
      return healthBody(gpu, daemon.uncordonGpu(gpu.uuid, req.principal));
    },
  );
}

/** The GPU `asked` names: its index (digits) or its UUID; a 400 for neither form, a 404 for no such GPU. */
export function findGpu<G extends { readonly index: number; readonly uuid: string }>(gpus: readonly G[], asked: string): G {
  const byIndex = /^\d+$/.test(asked);
  if (!byIndex && !/^(GPU|MIG)-[\w-]+$/i.test(asked)) throw new GsError(ErrorCodes.invalidArgument, `gpu: "${shown(asked)}" is neither a GPU index (0, 1, ...) nor a GPU UUID (GPU-...)`);
  const gpu = byIndex ? gpus.find((g) => g.index === Number(asked)) : gpus.find((g) => g.uuid.toLowerCase() === asked.toLowerCase());
  if (gpu === undefined) {
    const have = gpus.length === 0 ? 'none' : gpus.map((g) => `${g.index} (${g.uuid})`).join(', ');
    throw new GsError(ErrorCodes.notFound, `no GPU ${shown(asked)} on this machine; it has ${have}`);
  }
  return gpu;
}

function healthBody(gpu: Pick<GpuWithSlices, 'index' | 'uuid'>, state: Omit<GpuHealthBody, 'index' | 'uuid' | 'fault'> & { readonly fault: { readonly kind: 'xid' | 'ecc'; readonly code: number | null; readonly at: number } | null }): GpuHealthBody {
  const fault = state.fault === null ? null : { kind: state.fault.kind, code: state.fault.code, at: state.fault.at };
  return { index: gpu.index, uuid: gpu.uuid, cordoned: state.cordoned, cordon: state.cordon, fault };
}
