/**
 * The cluster component as one process: the extender's verbs and the webhook on one fastify
 * server (HTTPS when given a certificate: the API server calls webhooks over TLS only), fed by
 * informers of every node and pod. The composition root for the Deployment (deploy/).
 */
import type { KubeConfig } from '@kubernetes/client-node';
import Fastify, { type FastifyInstance } from 'fastify';
import { Extender, type ExtenderOptions } from './extender.js';
import { KubePodBinder, watchCluster } from './kube-client.js';
import { EXTENDER_BODY_LIMIT, registerExtenderRoutes } from './server.js';
import { registerWebhookRoute } from '../webhook/server.js';
import type { WebhookOptions } from '../webhook/admission.js';

export interface ClusterComponentOptions {
  readonly kubeConfig: KubeConfig;
  readonly host?: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** PEM certificate and key; absent: plain HTTP (the extender alone, behind the scheduler's own network policy). */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly extender?: ExtenderOptions & { readonly prefix?: string };
  readonly webhook?: WebhookOptions & { readonly path?: string };
  /** Watch failures (the informers re-list and go on). */
  readonly onError?: (e: unknown) => void;
}

export interface ClusterComponent {
  readonly url: string;
  readonly extender: Extender;
  readonly app: FastifyInstance;
  close(): Promise<void>;
}

/** Lists and watches the cluster, then listens: the verbs never answer from an empty view. */
export async function startClusterComponent(options: ClusterComponentOptions): Promise<ClusterComponent> {
  const extender = new Extender(new KubePodBinder(options.kubeConfig), options.extender ?? {});
  const watch = await watchCluster(options.kubeConfig, extender, options.onError);
  const app = Fastify({ bodyLimit: EXTENDER_BODY_LIMIT, ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}) });
  try {
    registerExtenderRoutes(app, extender, options.extender?.prefix === undefined ? {} : { prefix: options.extender.prefix });
    registerWebhookRoute(app, () => extender.view.snapshot().nodes.map((n) => n.spec), options.webhook ?? {});
    const url = await app.listen({ host: options.host ?? '0.0.0.0', port: options.port });
    return {
      url,
      extender,
      app,
      async close() {
        await app.close();
        await watch.stop();
      },
    };
  } catch (e) {
    await app.close().catch(() => undefined);
    await watch.stop();
    throw e;
  }
}
