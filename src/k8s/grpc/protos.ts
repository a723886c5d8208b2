/**
 * The kubelet's gRPC services, loaded from the project's own wire-compatible .proto files
 * (proto/k8s/, shipped with the package). keepCase: the fields keep their proto names
 * (pool_name, cdi_device_ids), which is what the kubelet's Go code puts on the wire by number
 * anyway; one spelling in our code and in the .proto files avoids a camelCase mapping to check.
 */
import { loadPackageDefinition, type GrpcObject, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/** proto/ at the package root: src/k8s/grpc and dist/k8s/grpc are both three levels below it. */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/k8s/', import.meta.url));

const FILES = ['pluginregistration-v1.proto', 'dra-v1.proto', 'dra-health-v1alpha1.proto', 'dra-health-v1.proto'];

/** The full gRPC service names, and the names registration advertises (supported_versions). */
export const SERVICES = {
  registration: 'pluginregistration.Registration',
  draPlugin: 'k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin',
  healthV1alpha1: 'v1alpha1.DRAResourceHealth',
  healthV1: 'v1.DRAResourceHealth',
} as const;

/**
 * What the kubelet (1.34+) looks for in supported_versions: "<last package element>.<service>"
 * (k8s.io/kubelet pkg/apis/dra/v1 DRAPluginService = "v1.DRAPlugin"; the health services'
 * names are their full gRPC names).
 */
export const ADVERTISED_SERVICES = ['v1.DRAPlugin', SERVICES.healthV1, SERVICES.healthV1alpha1] as const;

export interface KubeletProtos {
  readonly registration: ServiceClientConstructor;
  readonly draPlugin: ServiceClientConstructor;
  readonly healthV1alpha1: ServiceClientConstructor;
  readonly healthV1: ServiceClientConstructor;
}

let loaded: KubeletProtos | null = null;

/** The services' definitions (for a server) and client constructors (for tests and tools). Loaded once. */
export function kubeletProtos(): KubeletProtos {
  if (loaded !== null) return loaded;
  const definition = loadSync(FILES, { includeDirs: [PROTO_DIR], keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const root = loadPackageDefinition(definition);
  const at = (name: string): ServiceClientConstructor => {
    let node: unknown = root;
    for (const part of name.split('.')) node = (node as GrpcObject)[part];
    if (typeof node !== 'function') throw new Error(`proto/k8s does not define the gRPC service ${name}`);
    return node as ServiceClientConstructor;
  };
  loaded = {
    registration: at(SERVICES.registration),
    draPlugin: at(SERVICES.draPlugin),
    healthV1alpha1: at(SERVICES.healthV1alpha1),
    healthV1: at(SERVICES.healthV1),
  };
  return loaded;
}

/** A service's server-side definition. */
export function serviceOf(client: ServiceClientConstructor): ServiceDefinition {
  return client.service;
}
