/**
 * The resource.k8s.io/v1 API server's own limits on a ResourceSlice (k8s.io/api resource/v1
 * types.go and its validation), checked before anything is sent: a slice the server would
 * reject is an error here, with the limit named, rather than a 422 on every publish.
 *
 * The rules are those of the current API (partitionable devices as beta in 1.36): a slice
 * holds devices or counter sets, never both; devices consume counters of sets defined in
 * other slices of the same pool; a slice where any device consumes counters has at most 64
 * devices.
 */
import type { V1ResourceSlice } from '@kubernetes/client-node';
import { ErrorCodes, GsError } from '../../domain/errors.js';

export const LIMITS = {
  /** ResourceSliceMaxDevices. */
  devicesPerSlice: 128,
  /** ResourceSliceMaxDevicesWithTaintsOrConsumesCounters. */
  devicesPerSliceWithCounters: 64,
  /** ResourceSliceMaxCounterSets. */
  counterSetsPerSlice: 8,
  /** ResourceSliceMaxCountersPerCounterSet. */
  countersPerCounterSet: 32,
  /** ResourceSliceMaxDeviceCounterConsumptionsPerDevice. */
  counterConsumptionsPerDevice: 2,
  /** ResourceSliceMaxAttributesAndCapacitiesPerDevice. */
  attributesAndCapacitiesPerDevice: 32,
  /** DeviceMaxIDLength: the C identifier of an attribute or capacity name. */
  qualifiedNameIdLength: 32,
  /** DriverNameMaxLength. */
  driverNameLength: 63,
  /** PoolNameMaxLength (a DNS subdomain). */
  poolNameLength: 253,
  /** A DNS label: device and counter-set names. */
  dnsLabelLength: 63,
  /** A DNS subdomain: object names. */
  objectNameLength: 253,
} as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const C_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function fail(what: string, detail: Record<string, unknown>): never {
  throw new GsError(ErrorCodes.invalidArgument, `ResourceSlice ${what}`, { details: detail });
}

/** A DNS label of at most 63 characters (device names, counter-set names, node names in pools). */
export function isDnsLabel(name: string): boolean {
  return name.length <= LIMITS.dnsLabelLength && DNS_LABEL.test(name);
}

/** A DNS subdomain of at most 253 characters (object names, driver and pool names). */
export function isDnsSubdomain(name: string, maxLength: number = LIMITS.objectNameLength): boolean {
  return name.length <= maxLength && DNS_SUBDOMAIN.test(name);
}

/** An unqualified attribute or capacity name (this driver's domain is implied). */
export function isQualifiedNameId(name: string): boolean {
  return name.length <= LIMITS.qualifiedNameIdLength && C_IDENTIFIER.test(name);
}

/** Throws a GsError (GS_ERR_INVALID_ARGUMENT) naming the first limit `slice` breaks. */
export function checkSliceLimits(slice: V1ResourceSlice): void {
  const name = slice.metadata?.name ?? '';
  const spec = slice.spec;
  if (!isDnsSubdomain(name)) fail(`name '${name}' is not a DNS subdomain of at most ${LIMITS.objectNameLength} characters`, { name });
  if (!isDnsSubdomain(spec.driver, LIMITS.driverNameLength)) fail(`driver '${spec.driver}' is not a DNS subdomain of at most ${LIMITS.driverNameLength} characters`, { driver: spec.driver });
  const poolParts = spec.pool.name.split('/');
  if (spec.pool.name.length > LIMITS.poolNameLength || !poolParts.every((p) => isDnsSubdomain(p))) {
    fail(`pool name '${spec.pool.name}' is not DNS subdomains separated by '/' of at most ${LIMITS.poolNameLength} characters`, { pool: spec.pool.name });
  }
  if (!(spec.pool.resourceSliceCount > 0)) fail(`pool '${spec.pool.name}' has resourceSliceCount ${spec.pool.resourceSliceCount}: must be at least 1`, { name });
  const devices = spec.devices ?? [];
  const counterSets = spec.sharedCounters ?? [];
  const withCounters = devices.some((d) => (d.consumesCounters ?? []).length > 0);
  const maxDevices = withCounters ? LIMITS.devicesPerSliceWithCounters : LIMITS.devicesPerSlice;
  if (devices.length > maxDevices) fail(`'${name}' has ${devices.length} devices: at most ${maxDevices}${withCounters ? ' where devices consume counters' : ''}`, { name, devices: devices.length });
  if (counterSets.length > LIMITS.counterSetsPerSlice) fail(`'${name}' has ${counterSets.length} counter sets: at most ${LIMITS.counterSetsPerSlice}`, { name });
  if (devices.length > 0 && counterSets.length > 0) fail(`'${name}' has both devices and counter sets: the API takes them in separate slices of the pool`, { name });
  for (const set of counterSets) {
    if (!isDnsLabel(set.name)) fail(`counter set name '${set.name}' is not a DNS label`, { name, counterSet: set.name });
    const counters = Object.keys(set.counters);
    if (counters.length > LIMITS.countersPerCounterSet) fail(`counter set '${set.name}' has ${counters.length} counters: at most ${LIMITS.countersPerCounterSet}`, { name, counterSet: set.name });
    for (const counter of counters) {
      if (!isDnsLabel(counter)) fail(`counter '${counter}' of set '${set.name}' is not a DNS label`, { name, counter });
    }
  }
  for (const device of devices) {
    if (!isDnsLabel(device.name)) fail(`device name '${device.name}' is not a DNS label of at most ${LIMITS.dnsLabelLength} characters`, { name, device: device.name });
    const keys = [...Object.keys(device.attributes ?? {}), ...Object.keys(device.capacity ?? {})];
    if (keys.length > LIMITS.attributesAndCapacitiesPerDevice) fail(`device '${device.name}' has ${keys.length} attributes and capacities: at most ${LIMITS.attributesAndCapacitiesPerDevice}`, { name, device: device.name });
    const badKey = keys.find((k) => !isQualifiedNameId(k));
    if (badKey !== undefined) fail(`device '${device.name}' has attribute or capacity '${badKey}': names are C identifiers of at most ${LIMITS.qualifiedNameIdLength} characters`, { name, key: badKey });
    const consumptions = device.consumesCounters ?? [];
    if (consumptions.length > LIMITS.counterConsumptionsPerDevice) fail(`device '${device.name}' consumes from ${consumptions.length} counter sets: at most ${LIMITS.counterConsumptionsPerDevice}`, { name, device: device.name });
  }
}

/** Throws a GsError naming the first rule the pool (all its slices) breaks: names unique, counter sets that exist. */
export function checkPoolLimits(slices: readonly V1ResourceSlice[]): void {
  slices.forEach(checkSliceLimits);
  const devices = new Set<string>();
  const sets = new Set<string>();
  for (const slice of slices) {
    for (const set of slice.spec.sharedCounters ?? []) {
      if (sets.has(set.name)) fail(`pool '${slice.spec.pool.name}' defines counter set '${set.name}' twice`, { counterSet: set.name });
      sets.add(set.name);
    }
    for (const device of slice.spec.devices ?? []) {
      if (devices.has(device.name)) fail(`pool '${slice.spec.pool.name}' lists device '${device.name}' twice`, { device: device.name });
      devices.add(device.name);
    }
  }
  for (const slice of slices) {
    for (const device of slice.spec.devices ?? []) {
      const missing = (device.consumesCounters ?? []).find((c) => !sets.has(c.counterSet));
      if (missing) fail(`device '${device.name}' consumes from counter set '${missing.counterSet}', which pool '${slice.spec.pool.name}' does not define`, { device: device.name });
    }
  }
}
