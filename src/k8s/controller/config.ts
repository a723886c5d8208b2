/**
 * `gpushare k8s controller`'s configuration: a JSON file (the chart mounts it from a ConfigMap)
 * and flags over it, validated by one strict zod schema so that a misspelt key or a wrong type
 * stops the process with the key's path and what was expected, before it touches the cluster.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { ErrorCodes, GsError } from '../../domain/index.js';

/** 0: any free port (the log says which). */
const port = z.int().min(0).max(65535);
/** A Kubernetes object name (RFC 1123 subdomain): scheduler names, PriorityClasses. */
const objectName = z.string().max(253).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, 'must be a lowercase RFC 1123 subdomain (a Kubernetes object name)');
/** A namespace name (RFC 1123 label). */
const namespaceName = z.string().max(63).regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a lowercase RFC 1123 label (a namespace name)');
const urlPath = z.string().regex(/^\/[A-Za-z0-9._~\-/]*$/, 'must be a URL path starting with /');

export const controllerConfigSchema = z.strictObject({
  /** The scheduler profile whose extender is this one: the webhook routes GPU pods to it. */
  schedulerName: objectName.default('gpushare-scheduler'),
  /** The HTTPS listener: webhook, extender verbs, health. */
  listen: z.strictObject({ host: z.string().min(1).default('0.0.0.0'), port: port.default(9443) }).prefault({}),
  /** PEM files (a Secret cert-manager or the user keeps); re-read every `reloadSeconds` and served when they change. */
  tls: z
    .strictObject({ cert: z.string().min(1), key: z.string().min(1), reloadSeconds: z.number().positive().max(3600).default(30) })
    .optional(),
  extender: z
    .strictObject({
      /** Path prefix of the verbs: KubeSchedulerConfiguration's urlPrefix ends with it. */
      prefix: urlPath.default('/gpushare-scheduler'),
      /** Also serve the verbs over plain HTTP on this port (the kube-scheduler in the cluster network). */
      plainHttpPort: port.optional(),
      /** GPU-by-GPU reasons for refused nodes in filter's answer. */
      explain: z.boolean().default(true),
    })
    .prefault({}),
  webhook: z
    .strictObject({
      path: urlPath.default('/mutate-pods'),
      /** MiB per GPU for a pod naming no memory (HAMi's defaultMemory); 0: the whole GPU. */
      defaultMemoryMiB: z.int().min(0).default(0),
    })
    .prefault({}),
  /** Which preempted pods are suspended (and resumed later) rather than evicted. */
  suspend: z.strictObject({ namespaces: z.array(namespaceName).default([]), priorityClasses: z.array(objectName).default([]) }).prefault({}),
});

export type ControllerConfig = z.infer<typeof controllerConfigSchema>;

/** Flags of `gpushare k8s controller` (each over the file's value). */
export interface ControllerFlags {
  readonly config?: string;
  readonly tlsCert?: string;
  readonly tlsKey?: string;
  readonly port?: string;
  readonly extenderPort?: string;
  readonly schedulerName?: string;
}

/** The file (if named), then the flags over it, validated; throws GS_ERR_INVALID_ARGUMENT or GS_ERR_NOT_FOUND saying what is wrong. */
export function loadControllerConfig(flags: ControllerFlags): ControllerConfig {
  const file = flags.config === undefined ? {} : readJson(flags.config);
  if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new GsError(ErrorCodes.invalidArgument, `config file ${flags.config}: (top): expected an object`);
  const raw = file as Record<string, Record<string, unknown> | undefined>;
  const merged: Record<string, unknown> = { ...raw };
  if (flags.schedulerName !== undefined) merged.schedulerName = flags.schedulerName;
  if (flags.port !== undefined) merged.listen = { ...raw.listen, port: portValue(flags.port) };
  if (flags.extenderPort !== undefined) merged.extender = { ...raw.extender, plainHttpPort: portValue(flags.extenderPort) };
  if (flags.tlsCert !== undefined || flags.tlsKey !== undefined) {
    merged.tls = { ...raw.tls, ...(flags.tlsCert !== undefined ? { cert: flags.tlsCert } : {}), ...(flags.tlsKey !== undefined ? { key: flags.tlsKey } : {}) };
  }
  const parsed = controllerConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ');
    throw new GsError(ErrorCodes.invalidArgument, `${flags.config === undefined ? 'controller flags' : `config file ${flags.config} (with the flags)`}: ${issues}`);
  }
  if (!parsed.data.tls) {
    throw new GsError(ErrorCodes.invalidArgument, 'a certificate is required: the API server calls admission webhooks over HTTPS only (tls.cert and tls.key in the config file, or --tls-cert and --tls-key)');
  }
  if (parsed.data.listen.port !== 0 && parsed.data.extender.plainHttpPort === parsed.data.listen.port) {
    throw new GsError(ErrorCodes.invalidArgument, `extender.plainHttpPort ${parsed.data.listen.port} is the HTTPS listener's port too: pick another`);
  }
  return parsed.data;
}

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new GsError(ErrorCodes.notFound, `config file ${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new GsError(ErrorCodes.invalidArgument, `config file ${path} is not valid JSON: ${(cause as Error).message}`, { cause });
  }
}

function portValue(text: string): number | string {
  // A number when it looks like one, so the schema's range check names it; else the text, which it refuses as a string.
  return /^\d+$/.test(text) ? Number(text) : text;
}
