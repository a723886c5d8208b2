/**
 * The node agent's configuration (`gpushare k8s node`): a JSON file (a ConfigMap in the
 * DaemonSet) under command-line flags, one zod schema for the file's validation and the type.
 * Everything is checked before anything starts: a bad file, flag or layout is one GsError
 * (GS_ERR_INVALID_ARGUMENT) naming the field and what is accepted, and nothing is opened.
 *
 *   {"nodeName": "gpu-7", "backend": "nvml", "pollMs": 5000,
 *    "layout": {"layout": "consumable", "memoryStepBytes": 268435456},
 *    "dra": {"enabled": true, "library": "/opt/gpushare/lib/libgpushare.so"},
 *    "classic": {"enabled": false},
 *    "health": {"listen": "0.0.0.0:8082"},
 *    "metrics": {"listen": "0.0.0.0:9394", "sampleSeconds": 1, "compat": ["hami"]},
 *    "suspend": {"enabled": true, "evictOnFailure": true, "lockTimeoutMs": 10000}}
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { BACKEND_CHOICES } from '../../gpu/choices.js';
import type { KubeConfigSource } from '../api/client.js';
import { layoutConfig, type LayoutConfig } from '../dra/slices.js';
import { METRICS_COMPAT_SETS, type MetricsCompatSet } from '../../monitor/metrics/compat.js';
import type { ClassicSettings } from './classic.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** A Kubernetes node name: a DNS subdomain (RFC 1123), as the API server validates it. */
const NODE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const absolute = (what: string) => z.string().regex(/^\//, `${what} must be an absolute path`);

const FileSchema = z.strictObject({
  nodeName: z.string().optional(),
  /** A kubeconfig file; absent: the pod's service account (in-cluster). */
  kubeconfig: z.string().min(1).optional(),
  backend: z.enum(BACKEND_CHOICES).optional(),
  /** A simulated fleet (`2xH100-80GB`) or a file holding one: tests and demos. */
  simulate: z.string().min(1).optional(),
  /** How often the GPUs are read for health and inventory changes. */
  pollMs: z.int().min(100).max(600_000).optional(),
  logLevel: z.enum(LOG_LEVELS).optional(),
  /** The ResourceSlice layout (dra/slices.ts layoutConfig); the node-GPUs annotation follows the same inventory. */
  layout: z.strictObject({
    layout: z.string(),
    memoryStepBytes: z.int().positive().optional(),
    coresStep: z.int().positive().optional(),
    partitions: z.array(z.int()).optional(),
    sharedCounters: z.boolean().optional(),
  }).optional(),
  dra: z.strictObject({
    enabled: z.boolean().optional(),
    /** libgpushare.so as the agent's image has it (installed onto the host at start). */
    library: absolute('dra.library').optional(),
    registryDir: absolute('dra.registryDir').optional(),
    pluginDir: absolute('dra.pluginDir').optional(),
    cdiDir: absolute('dra.cdiDir').optional(),
  }).optional(),
  /** The HAMi-compatible device plugin (v1beta1, src/k8s/deviceplugin), run inside the agent. */
  classic: z.strictObject({
    enabled: z.boolean().optional(),
    /** Replicas advertised per GPU (HAMi's deviceSplitCount). */
    split: z.int().min(1).max(1024).optional(),
    /** The extended resource it advertises (HAMi's nvidia.com/gpu). */
    resourceName: z.string().regex(/^[a-z0-9.-]+\/[a-z0-9.-]+$/, 'a domain-prefixed resource name like nvidia.com/gpu').optional(),
    /** Its state: the ledger, the installed libgpushare, each container's region directory. */
    stateDir: absolute('classic.stateDir').optional(),
    /** The kubelet's device-plugin directory (its kubelet.sock and ours). */
    deviceDir: absolute('classic.deviceDir').optional(),
  }).optional(),
  /** Where the DaemonSet's probes ask: host:port, or a Unix socket path. */
  health: z.strictObject({ listen: z.string().min(1).optional() }).optional(),
  /** GET /metrics of the node's GPUs and pods' slices (metrics.ts): where, how often sampled, which extra name sets. */
  metrics: z.strictObject({
    enabled: z.boolean().optional(),
    /** host:port or a Unix socket path. */
    listen: z.string().min(1).optional(),
    sampleSeconds: z.number().min(0.1).max(3600).optional(),
    compat: z.array(z.enum(METRICS_COMPAT_SETS)).max(METRICS_COMPAT_SETS.length).optional(),
  }).optional(),
  suspend: z.strictObject({
    enabled: z.boolean().optional(),
    /** A pod that cannot be suspended is evicted (Eviction API, so disruption budgets apply); false: it keeps running. */
    evictOnFailure: z.boolean().optional(),
    /** How long a lock waits for a process's GPU work to drain. */
    lockTimeoutMs: z.int().min(1).max(600_000).optional(),
    /** The agent's own small record of suspensions in progress. */
    stateFile: absolute('suspend.stateFile').optional(),
  }).optional(),
});
export type AgentConfigFile = z.infer<typeof FileSchema>;

/** Flags as `gpushare k8s node` takes them (each wins over the file). */
export interface AgentFlags {
  readonly config?: string;
  readonly nodeName?: string;
  readonly kubeconfig?: string;
  readonly backend?: string;
  readonly simulate?: string;
  readonly layout?: string;
  readonly healthListen?: string;
  /** host:port, a Unix socket path, or `off`. */
  readonly metricsListen?: string;
  readonly library?: string;
  readonly pluginDir?: string;
  readonly registryDir?: string;
  readonly cdiDir?: string;
  readonly logLevel?: string;
}

export type HealthListen = { readonly kind: 'tcp'; readonly host: string; readonly port: number } | { readonly kind: 'unix'; readonly path: string };

export interface AgentConfig {
  readonly nodeName: string;
  readonly kube: KubeConfigSource;
  readonly backend: { readonly choice: string; readonly simulate: string | undefined };
  readonly pollMs: number;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly layout: LayoutConfig;
  readonly dra: { readonly enabled: boolean; readonly library: string; readonly registryDir: string; readonly pluginDir: string; readonly cdiDir: string };
  readonly classic: { readonly enabled: boolean; readonly settings: ClassicSettings };
  readonly health: HealthListen;
  /** null listen: no /metrics (metrics.enabled false, or --metrics-listen off). */
  readonly metrics: { readonly listen: HealthListen | null; readonly sampleMs: number; readonly compat: readonly MetricsCompatSet[] };
  readonly suspend: { readonly enabled: boolean; readonly evictOnFailure: boolean; readonly lockTimeoutMs: number; readonly stateFile: string };
}

export const AGENT_DEFAULTS = {
  pollMs: 5000,
  library: '/usr/local/gpushare/lib/libgpushare.so',
  registryDir: '/var/lib/kubelet/plugins_registry',
  pluginDir: '/var/lib/kubelet/plugins',
  cdiDir: '/var/run/cdi',
  health: '0.0.0.0:8082',
  /** HAMi's device-plugin DaemonSet serves its vGPU metrics on 9394 (dcgm-exporter takes 9400). */
  metrics: '0.0.0.0:9394',
  lockTimeoutMs: 10_000,
  stateFile: '/var/lib/gpushare/agent/suspensions.json',
} as const;

function invalid(message: string): never {
  throw new GsError(ErrorCodes.invalidArgument, message);
}

/** The file's settings: a missing file is GS_ERR_NOT_FOUND, anything wrong in it one error naming the field. */
export function readAgentConfigFile(path: string): AgentConfigFile {
  const where = `config file ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new GsError(missing ? ErrorCodes.notFound : ErrorCodes.invalidArgument, missing ? `${where} does not exist` : `${where} cannot be read: ${(cause as Error).message}`, { cause });
  }
  const parsed = FileSchema.safeParse(jsonOrInvalid(text, where));
  if (parsed.success) return parsed.data;
  return invalid(`${where}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`);
}

function jsonOrInvalid(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    return invalid(`${where} is not valid JSON: ${(cause as Error).message}`);
  }
}

/**
 * The agent's configuration from flags over the file over defaults; `env` gives NODE_NAME (the
 * DaemonSet passes it from spec.nodeName through the downward API).
 */
export function resolveAgentConfig(flags: AgentFlags, env: Readonly<Record<string, string | undefined>> = process.env): AgentConfig {
  const file: AgentConfigFile = flags.config !== undefined ? readAgentConfigFile(flags.config) : {};
  const nodeName = flags.nodeName ?? file.nodeName ?? env['NODE_NAME'];
  if (nodeName === undefined || nodeName === '') invalid('no node name: pass --node-name, set nodeName in the config file, or NODE_NAME (a DaemonSet sets it from spec.nodeName)');
  if (nodeName.length > 253 || !NODE_NAME.test(nodeName)) invalid(`node name "${nodeName}" is not a Kubernetes node name (lowercase letters, digits, '-' and '.', at most 253)`);
  const backend = flags.backend ?? file.backend ?? 'auto';
  if (!(BACKEND_CHOICES as readonly string[]).includes(backend)) invalid(`backend "${backend}" is not one of ${BACKEND_CHOICES.join(', ')}`);
  const logLevel = flags.logLevel ?? file.logLevel ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) invalid(`log level "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  const kubeconfig = flags.kubeconfig ?? file.kubeconfig;
  const dra = file.dra ?? {};
  const suspend = file.suspend ?? {};
  const layoutSettings = { ...(file.layout ?? { layout: 'consumable' }), ...(flags.layout !== undefined ? { layout: flags.layout } : {}) };
  let layout: LayoutConfig;
  try {
    layout = layoutConfig(layoutSettings);
  } catch (e) {
    invalid(`layout: ${(e as Error).message}`);
  }
  const absolutePath = (what: string, path: string): string => (path.startsWith('/') ? path : invalid(`${what} "${path}" must be an absolute path`));
  return {
    nodeName,
    kube: kubeconfig !== undefined ? { kind: 'file', path: kubeconfig } : { kind: 'inCluster' },
    backend: { choice: backend, simulate: flags.simulate ?? file.simulate },
    pollMs: file.pollMs ?? AGENT_DEFAULTS.pollMs,
    logLevel: logLevel as AgentConfig['logLevel'],
    layout,
    dra: {
      enabled: dra.enabled ?? true,
      library: absolutePath('--library', flags.library ?? dra.library ?? AGENT_DEFAULTS.library),
      registryDir: absolutePath('--registry-dir', flags.registryDir ?? dra.registryDir ?? AGENT_DEFAULTS.registryDir),
      pluginDir: absolutePath('--plugin-dir', flags.pluginDir ?? dra.pluginDir ?? AGENT_DEFAULTS.pluginDir),
      cdiDir: absolutePath('--cdi-dir', flags.cdiDir ?? dra.cdiDir ?? AGENT_DEFAULTS.cdiDir),
    },
    classic: {
      enabled: file.classic?.enabled ?? false,
      settings: {
        ...(file.classic?.split !== undefined ? { split: file.classic.split } : {}),
        ...(file.classic?.resourceName !== undefined ? { resourceName: file.classic.resourceName } : {}),
        ...(file.classic?.stateDir !== undefined ? { stateDir: file.classic.stateDir } : {}),
        ...(file.classic?.deviceDir !== undefined ? { deviceDir: file.classic.deviceDir } : {}),
      },
    },
    health: parseHealthListen(flags.healthListen ?? file.health?.listen ?? AGENT_DEFAULTS.health),
    metrics: metricsConfig(flags.metricsListen, file.metrics ?? {}),
    suspend: {
      enabled: suspend.enabled ?? true,
      evictOnFailure: suspend.evictOnFailure ?? true,
      lockTimeoutMs: suspend.lockTimeoutMs ?? AGENT_DEFAULTS.lockTimeoutMs,
      stateFile: suspend.stateFile ?? AGENT_DEFAULTS.stateFile,
    },
  };
}

function metricsConfig(flag: string | undefined, file: NonNullable<AgentConfigFile['metrics']>): AgentConfig['metrics'] {
  const off = flag === 'off' || (flag === undefined && file.enabled === false);
  return {
    listen: off ? null : parseHealthListen(flag ?? file.listen ?? AGENT_DEFAULTS.metrics, 'metrics'),
    sampleMs: Math.round((file.sampleSeconds ?? 1) * 1000),
    compat: [...new Set(file.compat ?? [])],
  };
}

/** `host:port` (port 0: any free one) or an absolute Unix socket path; `what` names the endpoint in the error. */
export function parseHealthListen(text: string, what = 'health'): HealthListen {
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  const m = /^(.*):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || m[1] === '' || port > 65535) invalid(`${what} listen address "${text}" is neither host:port (port 0-65535) nor an absolute Unix socket path`);
  return { kind: 'tcp', host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}
