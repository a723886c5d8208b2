/**
 * The kubelet's device-plugin API v1beta1, loaded from the project's own wire-compatible .proto
 * (proto/k8s/deviceplugin/), and the constants of that API. keepCase, as for the DRA services:
 * fields keep their proto names (devices_ids, available_deviceIDs), one spelling everywhere.
 */
import { loadPackageDefinition, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_DIR } from '../grpc/protos.js';

export const DEVICE_PLUGIN_PROTO = 'deviceplugin/api-v1beta1.proto';

/** The API version the plugin registers with (upstream's `Version`). */
export const API_VERSION = 'v1beta1';
/** Where the kubelet's socket and the plugins' sockets live (upstream's `DevicePluginPath`). */
export const DEFAULT_DEVICE_PLUGIN_DIR = '/var/lib/kubelet/device-plugins';
/** The kubelet's registration socket's file name in that directory. */
export const KUBELET_SOCKET = 'kubelet.sock';
/** Upstream's device health words. */
export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';

/** The two services: definitions for a server, client constructors for the kubelet's side in tests. */
export interface DevicePluginProtos {
  readonly registration: ServiceClientConstructor;
  readonly devicePlugin: ServiceClientConstructor;
}

let loaded: DevicePluginProtos | null = null;

/** Loads the .proto once; a service missing from it is an error naming the file. */
export function devicePluginProtos(): DevicePluginProtos {
  if (loaded === null) {
    const definition = loadSync(DEVICE_PLUGIN_PROTO, { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
    const { Registration, DevicePlugin } = (loadPackageDefinition(definition)['v1beta1'] ?? {}) as Record<string, ServiceClientConstructor | undefined>;
    if (Registration === undefined || DevicePlugin === undefined) throw new Error(`${DEVICE_PLUGIN_PROTO} must define v1beta1.Registration and v1beta1.DevicePlugin`);
    loaded = { registration: Registration, devicePlugin: DevicePlugin };
  }
  return loaded;
}
