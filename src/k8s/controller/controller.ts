/**
 * `gpushare k8s controller`: the cluster component (scheduler extender + mutating webhook) as
 * the Deployment runs it. The configuration (config.ts) picks the listeners, the certificate
 * files (reloaded as they rotate: certificates.ts), the scheduler name and the suspend policy;
 * the component itself is src/k8s/extender/serve.ts. Logs are JSON lines on stderr.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { startClusterComponent, type ClusterComponent } from '../extender/serve.js';
import { loadCertificatePair, watchCertificates, type CertificateWatch } from './certificates.js';
import type { ControllerConfig } from './config.js';

export type LogFn = (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;

/** One JSON line per event on stderr (what the cluster's log collector reads). */
export const stderrLog: LogFn = (level, message, fields = {}) => {
  process.stderr.write(`${JSON.stringify({ level, time: new Date().toISOString(), component: 'gpushare-controller', msg: message, ...fields })}\n`);
};

export interface RunningController {
  readonly url: string;
  readonly extenderUrl: string | null;
  readonly component: ClusterComponent;
  readonly certificates: CertificateWatch;
  /** Not ready, stop listening (in-flight requests finish), stop the watches. */
  close(): Promise<void>;
}

export async function startController(config: ControllerConfig, kubeConfig: KubeConfig, log: LogFn = stderrLog): Promise<RunningController> {
  const tls = config.tls;
  if (!tls) throw new Error('gpushare: the controller needs tls.cert and tls.key (the API server calls webhooks over HTTPS only)');
  const pair = await loadCertificatePair(tls);
  const component = await startClusterComponent({
    kubeConfig,
    host: config.listen.host,
    port: config.listen.port,
    tls: pair,
    ...(config.extender.plainHttpPort !== undefined ? { extenderPort: config.extender.plainHttpPort } : {}),
    extender: { prefix: config.extender.prefix, explain: config.extender.explain, suspend: config.suspend },
    webhook: { path: config.webhook.path, schedulerName: config.schedulerName, defaultMemoryMiB: config.webhook.defaultMemoryMiB },
    onError: (e) => log('warn', 'watch failed; re-listing', { error: e instanceof Error ? e.message : String(e) }),
  });
  const certificates = watchCertificates(
    tls,
    pair,
    (p) => component.setCertificate(p),
    (event) => (event.kind === 'rotated' ? log('info', 'serving the rotated certificate', { cert: tls.cert }) : log('error', 'kept the previous certificate', { reason: event.message })),
    tls.reloadSeconds * 1000,
  );
  log('info', 'serving', { url: component.url, extenderUrl: component.extenderUrl, schedulerName: config.schedulerName });
  return {
    url: component.url,
    extenderUrl: component.extenderUrl,
    component,
    certificates,
    async close() {
      certificates.stop();
      await component.close();
    },
  };
}
