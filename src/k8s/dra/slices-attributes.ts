/**
 * A GPU's ResourceSlice attributes and quantities: the inventory's facts in the forms the
 * resource.k8s.io/v1 API accepts (versions as strict semver, PCI addresses as sysfs spells them,
 * quantities in the canonical form the API server would store, so a re-read compares equal).
 */
import type { V1DeviceAttribute } from '@kubernetes/client-node';
import { ErrorCodes, GsError } from '../../domain/errors.js';
import type { Gpu } from '../../domain/gpu.js';
import { ATTRIBUTE } from './names.js';

/** Driver-wide facts published on every device (NVML's system queries). */
export interface DriverFacts {
  /** NVIDIA driver version as NVML prints it, e.g. `580.65.06`. */
  readonly driverVersion: string | null;
  /** CUDA driver API version, e.g. `13.0`. */
  readonly cudaDriverVersion: string | null;
}

/** The API's limit on a string or version attribute (DeviceAttributeMaxValueLength). */
export const ATTRIBUTE_VALUE_MAX_LENGTH = 64;

/**
 * A dotted version as strict semver (the API rejects anything else): missing parts become 0 and
 * leading zeros go (`580.65.06` -> `580.65.6`, `13.0` -> `13.0.0`), so CEL's semver comparisons
 * (`device.attributes[...].driverVersion.isGreaterThan(semver("570.0.0"))`) work on them.
 */
export function semverOf(field: string, value: string): string {
  const match = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(value.trim());
  if (!match) {
    throw new GsError(ErrorCodes.invalidArgument, `${field} '${value}' is not a version of one to three dot-separated numbers (e.g. 580.65.06, 13.0)`, { details: { field, value } });
  }
  return [match[1], match[2], match[3]].map((part) => String(Number(part ?? '0'))).join('.');
}

/** NVML's `00000000:19:00.0` as the kernel's sysfs and CDI write it: `0000:19:00.0`. */
export function sysfsPciAddress(busId: string): string {
  const match = /^([0-9a-f]{4,8}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i.exec(busId.trim());
  if (!match) {
    throw new GsError(ErrorCodes.invalidArgument, `PCI bus id '${busId}' is not of the form DDDDDDDD:BB:DD.F (e.g. 00000000:19:00.0)`, { details: { field: 'pciBusId', value: busId } });
  }
  const domain = match[1]!.slice(-4);
  return `${domain}:${match[2]}:${match[3]}.${match[4]}`.toLowerCase();
}

/**
 * The architecture for a compute capability's major (and, where one major spans two
 * architectures, minor) version. null for one this table does not know yet: better no
 * attribute than a wrong one.
 */
export function architectureOf(computeCapability: string): string | null {
  const match = /^(\d+)\.(\d+)$/.exec(computeCapability.trim());
  if (!match) return null;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  switch (major) {
    case 3: return 'Kepler';
    case 5: return 'Maxwell';
    case 6: return 'Pascal';
    case 7: return minor >= 5 ? 'Turing' : 'Volta';
    case 8: return minor === 9 ? 'Ada Lovelace' : 'Ampere';
    case 9: return 'Hopper';
    case 10: case 11: case 12: return 'Blackwell';
    default: return null;
  }
}

const BINARY_SUFFIXES = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'] as const;
const DECIMAL_SUFFIXES = ['k', 'M', 'G', 'T', 'P', 'E'] as const;

/**
 * A whole non-negative number as the canonical resource.Quantity string the API server stores:
 * the largest binary suffix that divides it exactly (`85899345920` -> `80Gi`), else the largest
 * decimal one (`1500000` -> `1500k`), else the plain number. Writing the canonical form means
 * the publisher's comparison of what it wants with what it reads back never sees a difference
 * the server made by re-formatting.
 */
export function quantity(value: number): string {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new GsError(ErrorCodes.internal, `quantity ${value} is not a whole non-negative number`);
  }
  if (value === 0) return '0';
  const pick = (base: number, suffixes: readonly string[]): string | null => {
    let scaled = value;
    let chosen = -1;
    while (chosen + 1 < suffixes.length && scaled % base === 0) {
      scaled /= base;
      chosen += 1;
    }
    return chosen < 0 ? null : `${scaled}${suffixes[chosen]}`;
  };
  return pick(1024, BINARY_SUFFIXES) ?? pick(1000, DECIMAL_SUFFIXES) ?? String(value);
}

function stringAttribute(field: string, value: string): V1DeviceAttribute {
  if (value.length > ATTRIBUTE_VALUE_MAX_LENGTH) {
    throw new GsError(ErrorCodes.invalidArgument, `${field} '${value}' is longer than the API's ${ATTRIBUTE_VALUE_MAX_LENGTH}-character limit for an attribute value`, { details: { field, value } });
  }
  return { string: value };
}

function versionAttribute(field: string, value: string): V1DeviceAttribute {
  return { version: semverOf(field, value) };
}

function intAttribute(value: number): V1DeviceAttribute {
  return { _int: value };
}

function boolAttribute(value: boolean): V1DeviceAttribute {
  return { bool: value };
}

/**
 * The attributes of one GPU's devices. A fact the inventory does not have (null) is left out,
 * never published as a made-up value; CEL selectors then see it as absent.
 */
export function gpuAttributes(gpu: Gpu, driver: DriverFacts): Record<string, V1DeviceAttribute> {
  const attributes: Record<string, V1DeviceAttribute> = {
    [ATTRIBUTE.uuid]: stringAttribute('uuid', gpu.uuid),
    [ATTRIBUTE.model]: stringAttribute('name', gpu.name),
    [ATTRIBUTE.index]: intAttribute(gpu.index),
    [ATTRIBUTE.migEnabled]: boolAttribute(gpu.migMode === 'enabled'),
  };
  if (gpu.computeCapability !== null) {
    attributes[ATTRIBUTE.computeCapability] = versionAttribute('computeCapability', gpu.computeCapability);
    const architecture = architectureOf(gpu.computeCapability);
    if (architecture !== null) attributes[ATTRIBUTE.architecture] = stringAttribute('architecture', architecture);
  }
  if (driver.driverVersion !== null) attributes[ATTRIBUTE.driverVersion] = versionAttribute('driverVersion', driver.driverVersion);
  if (driver.cudaDriverVersion !== null) attributes[ATTRIBUTE.cudaDriverVersion] = versionAttribute('cudaDriverVersion', driver.cudaDriverVersion);
  if (gpu.pciBusId !== null) attributes[ATTRIBUTE.pciBusId] = stringAttribute('pciBusId', sysfsPciAddress(gpu.pciBusId));
  if (gpu.numaNode !== null) attributes[ATTRIBUTE.numaNode] = intAttribute(gpu.numaNode);
  if (gpu.multiprocessorCount !== null) attributes[ATTRIBUTE.multiprocessors] = intAttribute(gpu.multiprocessorCount);
  return attributes;
}
