/**
 * The node agent's monitoring (Kubernetes mode, where no daemon runs): the daemon's own sampler,
 * sample hub and Prometheus exporter (src/monitor), fed with the node's GPUs and the pods'
 * slices (pod-slices.ts), and `GET /metrics` on its own address (default 0.0.0.0:9394, the port
 * HAMi's device-plugin DaemonSet serves its vGPU metrics on, so a scrape configured for HAMi
 * finds it; dcgm-exporter's 9400 stays free for dcgm-exporter beside it). Slices carry
 * `namespace`, `pod`, `container`; HAMi's and dcgm-exporter's names come with `metrics.compat`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Gpu } from '../../domain/gpu.js';
import { SampleHub } from '../../monitor/hub.js';
import { MetricsExporter, type MetricsCompatSet } from '../../monitor/metrics/exporter.js';
import { Sampler } from '../../monitor/sampler.js';
import type { HealthListen } from './config.js';
import { startHttpEndpoint } from './health.js';
import type { AgentLog } from './log.js';
import { readPodSlices, type PodSliceOwner } from './pod-slices.js';

export interface AgentMonitorOptions {
  readonly listen: HealthListen;
  readonly sampleMs: number;
  readonly compat: readonly MetricsCompatSet[];
  /** The node's name: the samples' `hostname` label (a pod's own hostname is its pod name). */
  readonly nodeName: string;
  readonly gpus: () => Gpu[];
  /** Every region-holding container or claim on the node now. */
  readonly owners: () => readonly PodSliceOwner[];
  /** Whether a pod is suspended now (the suspender's record); absent: none is. */
  readonly suspended?: (podUid: string) => boolean;
  readonly log: AgentLog;
}

export interface AgentMonitor {
  /** `host:port` as bound, or the socket path. */
  readonly address: string;
  readonly samples: SampleHub;
  /** Takes a sample now (tests; the timer takes one every period). */
  sampleNow(): void;
  close(): Promise<void>;
}

export async function startAgentMonitor(options: AgentMonitorOptions): Promise<AgentMonitor> {
  const { log } = options;
  const samples = new SampleHub((err) => log.warn({ event: 'agent.monitor', error: (err as Error).message }, 'a monitoring consumer failed on a sample'));
  const exporter = new MetricsExporter({ samples, tenants: () => [], submittedAt: () => null, compat: options.compat, daemonMetrics: false });
  let gpus: Gpu[] = [];
  const sampler = new Sampler({
    backend: { gpus: () => (gpus = options.gpus()) },
    containers: () => readPodSlices(options.owners(), gpus, options.suspended),
    publish: (s) => samples.publish(s),
    periodMs: options.sampleMs,
    hostname: options.nodeName,
    onError: (err) => log.warn({ event: 'agent.monitor.sample', error: (err as Error).message }, 'a monitoring sample could not be taken'),
  });
  const serve = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found: /metrics is served"}\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    exporter.render(req.headers.accept).then(
      (m) => res.writeHead(200, { 'content-type': m.contentType }).end(req.method === 'HEAD' ? undefined : m.body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`),
    );
  };
  let endpoint;
  try {
    endpoint = await startHttpEndpoint(options.listen, 'the metrics endpoint', serve);
  } catch (e) {
    sampler.close();
    throw e;
  }
  const http = endpoint;
  return {
    address: http.address,
    samples,
    sampleNow: () => void sampler.sampleNow(),
    async close() {
      sampler.close();
      await http.close();
    },
  };
}
