/**
 * The project's .proto files against the kubelet's (k8s.io/kubelet pkg/apis/pluginregistration/v1,
 * dra/v1, dra-health/v1alpha1 and v1, read for this table): every method path, and every
 * message's field names, numbers, types and labels. A renumbered or retyped field would still
 * load and still pass our own round trips, yet break against a real kubelet: this table is what
 * catches it.
 */
import { loadSync, type MessageTypeDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../src/k8s/grpc/protos.js';

const definitions = loadSync(['pluginregistration-v1.proto', 'dra-v1.proto', 'dra-health-v1alpha1.proto', 'dra-health-v1.proto'], { includeDirs: [PROTO_DIR], keepCase: true });

const DRA = 'k8s.io.kubelet.pkg.apis.dra.v1';
const health = (pkg: string): Record<string, string[]> => ({
  [`${pkg}.NodeWatchResourcesRequest`]: [],
  [`${pkg}.DeviceIdentifier`]: ['pool_name 1 string', 'device_name 2 string'],
  [`${pkg}.DeviceHealth`]: ['device 1 message', 'health 2 enum', 'last_updated_time 3 int64', 'health_check_timeout_seconds 4 int64', 'message 5 string'],
  [`${pkg}.NodeWatchResourcesResponse`]: ['devices 1 message repeated'],
});

/** Upstream's messages: "name number type [repeated]". */
const MESSAGES: Record<string, string[]> = {
  'pluginregistration.PluginInfo': ['type 1 string', 'name 2 string', 'endpoint 3 string', 'supported_versions 4 string repeated'],
  'pluginregistration.RegistrationStatus': ['plugin_registered 1 bool', 'error 2 string'],
  'pluginregistration.RegistrationStatusResponse': [],
  'pluginregistration.InfoRequest': [],
  [`${DRA}.NodePrepareResourcesRequest`]: ['claims 1 message repeated'],
  [`${DRA}.NodePrepareResourcesResponse`]: ['claims 1 message repeated'], // a map is a repeated entry message on the wire
  [`${DRA}.NodePrepareResourceResponse`]: ['devices 1 message repeated', 'error 2 string'],
  [`${DRA}.Device`]: ['request_names 1 string repeated', 'pool_name 2 string', 'device_name 3 string', 'cdi_device_ids 4 string repeated', 'share_id 5 string'],
  [`${DRA}.NodeUnprepareResourcesRequest`]: ['claims 1 message repeated'],
  [`${DRA}.NodeUnprepareResourcesResponse`]: ['claims 1 message repeated'],
  [`${DRA}.NodeUnprepareResourceResponse`]: ['error 1 string'],
  [`${DRA}.Claim`]: ['namespace 1 string', 'uid 2 string', 'name 3 string'],
  // v1alpha1's service carries v1's messages: upstream's v1alpha1 messages are these, field for field.
  ...health('v1'),
};

const METHODS: Record<string, string[]> = {
  'pluginregistration.Registration': ['/pluginregistration.Registration/GetInfo', '/pluginregistration.Registration/NotifyRegistrationStatus'],
  [`${DRA}.DRAPlugin`]: [`/${DRA}.DRAPlugin/NodePrepareResources`, `/${DRA}.DRAPlugin/NodeUnprepareResources`],
  'v1alpha1.DRAResourceHealth': ['/v1alpha1.DRAResourceHealth/NodeWatchResources'],
  'v1.DRAResourceHealth': ['/v1.DRAResourceHealth/NodeWatchResources'],
};

describe('the .proto files match the kubelet\'s', () => {
  it.each(Object.entries(MESSAGES))('%s', (name, fields) => {
    const message = definitions[name] as MessageTypeDefinition<object, object> | undefined;
    expect(message, `${name} is missing`).toBeDefined();
    const ours = (message?.type as { field: { name: string; number: number; type: string; label: string }[] }).field.map((f) =>
      `${f.name} ${f.number} ${f.type.replace('TYPE_', '').toLowerCase()}${f.label === 'LABEL_REPEATED' ? ' repeated' : ''}`);
    expect(ours).toEqual(fields);
  });

  it('share_id is a proto3 optional (presence on the wire), as upstream', () => {
    const device = definitions[`${DRA}.Device`] as MessageTypeDefinition<object, object>;
    expect((device.type as { oneofDecl: { name: string }[] }).oneofDecl.map((o) => o.name)).toEqual(['_share_id']);
  });

  it('v1alpha1\'s NodeWatchResources carries v1\'s messages', () => {
    const m = Object.values(definitions['v1alpha1.DRAResourceHealth'] as ServiceDefinition)[0];
    expect([m?.requestType.type, m?.responseType.type]).toEqual([(definitions['v1.NodeWatchResourcesRequest'] as MessageTypeDefinition<object, object>).type, (definitions['v1.NodeWatchResourcesResponse'] as MessageTypeDefinition<object, object>).type]);
  });

  it.each(['v1'])('%s HealthStatus is UNKNOWN 0, HEALTHY 1, UNHEALTHY 2', (pkg) => {
    const e = definitions[`${pkg}.HealthStatus`] as unknown as { type: { value: { name: string; number: number }[] } };
    expect(e.type.value.map((v) => `${v.name} ${v.number}`)).toEqual(['UNKNOWN 0', 'HEALTHY 1', 'UNHEALTHY 2']);
  });

  it.each(Object.entries(METHODS))('%s method paths', (service, paths) => {
    const s = definitions[service] as ServiceDefinition;
    expect(Object.values(s).map((m) => m.path)).toEqual(paths);
    if (service.endsWith('DRAResourceHealth')) expect(Object.values(s)[0]?.responseStream).toBe(true);
  });
});
