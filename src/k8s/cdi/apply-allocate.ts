/**
 * The device plugin API's (v1beta1) ContainerAllocateResponse, as a gRPC client with the
 * proto's field names (keepCase, as src/k8s/grpc loads the kubelet's protos) receives it:
 * `envs`, `mounts` {container_path, host_path, read_only}, `devices` {container_path,
 * host_path, permissions}, `annotations`, `cdi_devices` {name}. Decoded at the boundary, with
 * the defaults proto3 gives absent fields; apply.ts's containerProcess turns it into the process.
 */
import { z } from 'zod';
import { fail, ok, type Result } from '../../domain/result.js';
import { parseCdiDeviceId } from './apply-spec.js';

const allocateSchema = z.looseObject({
  envs: z.record(z.string(), z.string()).default({}),
  mounts: z.array(z.looseObject({
    container_path: z.string().min(1, 'a mount needs its container_path'),
    host_path: z.string().min(1, 'a mount needs its host_path'),
    read_only: z.boolean().default(false),
  })).default([]),
  devices: z.array(z.looseObject({
    container_path: z.string().min(1, 'a device needs its container_path'),
    host_path: z.string().min(1, 'a device needs its host_path'),
    permissions: z.string().refine((p) => /^[rwm]*$/.test(p), { message: 'permissions are some of r, w, m' }).default(''),
  })).default([]),
  annotations: z.record(z.string(), z.string()).default({}),
  cdi_devices: z.array(z.looseObject({ name: z.string() })).default([]),
});

export type ContainerAllocateResponse = z.infer<typeof allocateSchema>;

/** Decodes one container's Allocate answer; a malformed one names its first bad field. */
export function decodeAllocateResponse(json: unknown): Result<ContainerAllocateResponse> {
  const parsed = allocateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(`ContainerAllocateResponse.${issue?.path.join('.') ?? ''}`, 'malformed', issue?.message ?? 'unreadable');
  }
  const badEnv = Object.keys(parsed.data.envs).find((k) => k === '' || k.includes('='));
  if (badEnv !== undefined) return fail('ContainerAllocateResponse.envs', 'malformed', `"${badEnv}" is not an environment variable name`);
  const badCdi = parsed.data.cdi_devices.find((d) => parseCdiDeviceId(d.name) === null);
  if (badCdi !== undefined) return fail('ContainerAllocateResponse.cdi_devices', 'malformed', `"${badCdi.name}" is not a fully qualified CDI device name (vendor.com/class=name)`);
  return ok(parsed.data);
}
