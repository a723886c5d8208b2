/**
 * The pods bound to this node, listed and watched (one ListWatch on `spec.nodeName`), for the
 * monitor to name the pod and containers of each DRA claim. The suspender watches the same pods
 * for its own work; where it runs, the agent asks it (Suspender.boundPods) instead of opening a
 * second watch, so one watch serves both, and this one runs only when DRA runs and the
 * suspender does not.
 */
import { CoreV1Api, ListWatch, Watch, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { apiFailure } from '../api/client.js';
import type { AgentLog } from './log.js';

/** The node's bound pods as a watch knows them now. */
export interface NodePods {
  boundPods(): readonly V1Pod[];
}

export interface NodePodWatch extends NodePods {
  stop(): Promise<void>;
}

/** Lists the pods bound to `nodeName` and keeps the list current; resolves once the first list is in. */
export async function watchNodePods(kubeConfig: KubeConfig, nodeName: string, log: AgentLog): Promise<NodePodWatch> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const fieldSelector = `spec.nodeName=${nodeName}`;
  const lw = new ListWatch<V1Pod>('/api/v1/pods', new Watch(kubeConfig), () => core.listPodForAllNamespaces({ fieldSelector }), false, undefined, fieldSelector);
  let stopped = false;
  lw.on('error', (e: unknown) => {
    log.warn({ event: 'agent.monitor.pods.watch', node: nodeName, reason: apiFailure(e).message }, 'pod watch for the metrics failed: listing again');
    // client-node's ListWatch stops on an error: start it again after a breath (as the suspender does).
    setTimeout(() => { if (!stopped) lw.start().catch(() => undefined); }, 1000).unref();
  });
  await lw.start();
  return {
    boundPods: () => lw.list(),
    async stop() {
      stopped = true;
      await lw.stop();
    },
  };
}
