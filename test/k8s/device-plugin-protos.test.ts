/**
 * The project's device-plugin .proto against the kubelet's (k8s.io/kubelet
 * pkg/apis/deviceplugin/v1beta1/api.proto, read for this table): every method path and stream
 * flag, and every message's field names, numbers, types and labels. A renumbered field would
 * still load and pass our own round trips, yet break against a real kubelet.
 */
import { loadSync, type MessageTypeDefinition, type ServiceDefinition } from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { PROTO_DIR } from '../../src/k8s/grpc/protos.js';
import { DEVICE_PLUGIN_PROTO, devicePluginProtos } from '../../src/k8s/deviceplugin/protos.js';

const definitions = loadSync(DEVICE_PLUGIN_PROTO, { includeDirs: [PROTO_DIR], keepCase: true });

/** Upstream's messages: "name number type [repeated]". */
const MESSAGES: Record<string, string[]> = {
  DevicePluginOptions: ['pre_start_required 1 bool', 'get_preferred_allocation_available 2 bool'],
  RegisterRequest: ['version 1 string', 'endpoint 2 string', 'resource_name 3 string', 'options 4 message'],
  Empty: [],
  ListAndWatchResponse: ['devices 1 message repeated'],
  TopologyInfo: ['nodes 1 message repeated'],
  NUMANode: ['ID 1 int64'],
  Device: ['ID 1 string', 'health 2 string', 'topology 3 message'],
  PreStartContainerRequest: ['devices_ids 1 string repeated'],
  PreStartContainerResponse: [],
  PreferredAllocationRequest: ['container_requests 1 message repeated'],
  ContainerPreferredAllocationRequest: ['available_deviceIDs 1 string repeated', 'must_include_deviceIDs 2 string repeated', 'allocation_size 3 int32'],
  PreferredAllocationResponse: ['container_responses 1 message repeated'],
  ContainerPreferredAllocationResponse: ['deviceIDs 1 string repeated'],
  AllocateRequest: ['container_requests 1 message repeated'],
  ContainerAllocateRequest: ['devices_ids 1 string repeated'],
  CDIDevice: ['name 1 string'],
  AllocateResponse: ['container_responses 1 message repeated'],
  // The two maps are repeated entry messages on the wire.
  ContainerAllocateResponse: ['envs 1 message repeated', 'mounts 2 message repeated', 'devices 3 message repeated', 'annotations 4 message repeated', 'cdi_devices 5 message repeated'],
  Mount: ['container_path 1 string', 'host_path 2 string', 'read_only 3 bool'],
  DeviceSpec: ['container_path 1 string', 'host_path 2 string', 'permissions 3 string'],
};

/** Upstream's methods: path, request type, response type, server streaming. */
const METHODS: Record<string, string[]> = {
  'v1beta1.Registration': ['/v1beta1.Registration/Register RegisterRequest Empty unary'],
  'v1beta1.DevicePlugin': [
    '/v1beta1.DevicePlugin/GetDevicePluginOptions Empty DevicePluginOptions unary',
    '/v1beta1.DevicePlugin/ListAndWatch Empty ListAndWatchResponse stream',
    '/v1beta1.DevicePlugin/GetPreferredAllocation PreferredAllocationRequest PreferredAllocationResponse unary',
    '/v1beta1.DevicePlugin/Allocate AllocateRequest AllocateResponse unary',
    '/v1beta1.DevicePlugin/PreStartContainer PreStartContainerRequest PreStartContainerResponse unary',
  ],
};

type Fields = { name: string; field: { name: string; number: number; type: string; label: string; typeName?: string }[] };

describe('the device-plugin .proto matches the kubelet\'s v1beta1', () => {
  it.each(Object.entries(MESSAGES))('v1beta1.%s', (name, fields) => {
    const message = definitions[`v1beta1.${name}`] as MessageTypeDefinition<object, object> | undefined;
    expect(message, `${name} is missing`).toBeDefined();
    const ours = (message?.type as Fields).field.map((f) =>
      `${f.name} ${f.number} ${f.type.replace('TYPE_', '').toLowerCase()}${f.label === 'LABEL_REPEATED' ? ' repeated' : ''}`);
    expect(ours).toEqual(fields);
  });

  it('message fields point at the upstream types', () => {
    const typeName = (message: string, field: string): string | undefined =>
      ((definitions[`v1beta1.${message}`] as MessageTypeDefinition<object, object>).type as Fields).field.find((f) => f.name === field)?.typeName;
    expect([
      typeName('RegisterRequest', 'options'), typeName('Device', 'topology'), typeName('TopologyInfo', 'nodes'),
      typeName('ListAndWatchResponse', 'devices'), typeName('ContainerAllocateResponse', 'mounts'), typeName('ContainerAllocateResponse', 'devices'),
      typeName('ContainerAllocateResponse', 'cdi_devices'), typeName('AllocateRequest', 'container_requests'),
    ]).toEqual(['DevicePluginOptions', 'TopologyInfo', 'NUMANode', 'Device', 'Mount', 'DeviceSpec', 'CDIDevice', 'ContainerAllocateRequest']);
  });

  it('envs and annotations are map<string, string>', () => {
    const nested = ((definitions['v1beta1.ContainerAllocateResponse'] as MessageTypeDefinition<object, object>).type as { nestedType: { name: string; field: { name: string; type: string }[]; options: { mapEntry?: boolean } | null }[] }).nestedType;
    // protobufjs names the entry types after the field (Envs), protoc would say EnvsEntry: the wire is the same.
    expect(nested.map((n) => `${n.name.replace(/Entry$/, '')} ${n.options?.mapEntry === true} ${n.field.map((f) => `${f.name}:${f.type}`).join(',')}`)).toEqual([
      'Envs true key:TYPE_STRING,value:TYPE_STRING',
      'Annotations true key:TYPE_STRING,value:TYPE_STRING',
    ]);
  });

  it.each(Object.entries(METHODS))('%s method paths', (service, methods) => {
    const s = definitions[service] as ServiceDefinition;
    const name = (t: { type: unknown }): string => (t.type as Fields).name;
    expect(Object.values(s).map((m) => `${m.path} ${name(m.requestType)} ${name(m.responseType)} ${m.responseStream ? 'stream' : 'unary'}`)).toEqual(methods);
  });

  it('the loaded services are the two upstream ones', () => {
    const { registration, devicePlugin } = devicePluginProtos();
    expect(Object.values(registration.service).map((m) => m.path)).toEqual(['/v1beta1.Registration/Register']);
    expect(Object.keys(devicePlugin.service)).toEqual(['GetDevicePluginOptions', 'ListAndWatch', 'GetPreferredAllocation', 'Allocate', 'PreStartContainer']);
  });
});
