/**
 * The cluster component as one process: the extender's verbs and the webhook on one fastify
 * server (HTTPS when given a certificate: the API server calls webhooks over TLS only), fed by
 * informers of every node and pod, with health endpoints for the kubelet's probes and,
 * optionally, a second plain-HTTP listener for the extender's verbs alone (the kube-scheduler
 * on a cluster-internal port). The composition root of `gpushare k8s controller`
 * (src/k8s/controller) and of the Deployment in deploy/.
 */
import type { Server as HttpsServer } from 'node:https';
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
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** A second listener, plain HTTP, serving the extender's verbs and health only (0: a free port). */
  readonly extenderPort?: number;
  readonly extender?: ExtenderOptions & { readonly prefix?: string };
  readonly webhook?: WebhookOptions & { readonly path?: string };
  /** Watch failures (the informers re-list and go on). */
  readonly onError?: (e: unknown) => void;
}

export interface ClusterComponent {
  readonly url: string;
  /** The plain-HTTP extender listener's URL, when `extenderPort` was given. */
  readonly extenderUrl: string | null;
  readonly extender: Extender;
  readonly app: FastifyInstance;
  /** Serves new connections with this certificate and key (rotation); throws, changing nothing, if they are not a usable pair or the listener is plain HTTP. */
  setCertificate(tls: { readonly cert: string | Buffer; readonly key: string | Buffer }): void;
  close(): Promise<void>;
}

/** Liveness and readiness paths (the kubelet's probes). */
export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';

/** Lists and watches the cluster, then listens: the verbs never answer from an empty view. */
export async function startClusterComponent(options: ClusterComponentOptions): Promise<ClusterComponent> {
  const extender = new Extender(new KubePodBinder(options.kubeConfig), options.extender ?? {});
  const watch = await watchCluster(options.kubeConfig, extender, options.onError);
  let closing = false;
  const health = (app: FastifyInstance): void => {
    app.get(HEALTH_PATH, async () => ({ status: 'ok' }));
    // Ready once listening (the lists are in before that); not ready while shutting down, so
    // the Service stops sending before the connections close.
    app.get(READY_PATH, async (_req, reply) => (closing ? reply.code(503).send({ status: 'shutting down' }) : { status: 'ready' }));
  };
  const prefix = options.extender?.prefix === undefined ? {} : { prefix: options.extender.prefix };
  const app = Fastify({ bodyLimit: EXTENDER_BODY_LIMIT, ...(options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}) });
  const plain = options.extenderPort === undefined ? null : Fastify({ bodyLimit: EXTENDER_BODY_LIMIT });
  const closeAll = async (): Promise<void> => {
    closing = true;
    await Promise.all([app.close(), plain?.close()]);
    await watch.stop();
  };
  try {
    health(app);
    registerExtenderRoutes(app, extender, prefix);
    registerWebhookRoute(app, () => extender.view.snapshot().nodes.map((n) => n.spec), options.webhook ?? {});
    const host = options.host ?? '0.0.0.0';
    const url = await app.listen({ host, port: options.port });
    let extenderUrl: string | null = null;
    if (plain) {
      health(plain);
      registerExtenderRoutes(plain, extender, prefix);
      extenderUrl = await plain.listen({ host, port: options.extenderPort ?? 0 });
    }
    return {
      url,
      extenderUrl,
      extender,
      app,
      setCertificate(tls) {
        if (!options.tls) throw new Error('gpushare: this listener is plain HTTP: there is no certificate to replace');
        (app.server as HttpsServer).setSecureContext({ cert: tls.cert, key: tls.key });
      },
      close: closeAll,
    };
  } catch (e) {
    await closeAll().catch(() => undefined);
    throw e;
  }
}
