/**
 * The API-server connection every gpushare Kubernetes component uses, over
 * @kubernetes/client-node: where the configuration comes from, the typed API groups, and what a
 * failed call means (the metav1.Status the server answered, and whether trying again can help).
 */
import { ApiException, CoreV1Api, createConfiguration, KubeConfig, ResourceV1Api, ServerConfiguration, Watch, type RequestContext, type SecurityAuthentication } from '@kubernetes/client-node';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';

/** Where the connection's configuration comes from. */
export type KubeConfigSource =
  /** The pod's service account (KUBERNETES_SERVICE_HOST and the mounted token): the DaemonSet's case. */
  | { readonly kind: 'inCluster' }
  /** A kubeconfig file, optionally with a context other than its current one. */
  | { readonly kind: 'file'; readonly path: string; readonly context?: string }
  /** $KUBECONFIG, ~/.kube/config, else in-cluster: what kubectl would use. */
  | { readonly kind: 'default' }
  /** An API server URL with an optional bearer token (tests, and `kubectl proxy`). */
  | { readonly kind: 'url'; readonly server: string; readonly token?: string };

export function loadKubeConfig(source: KubeConfigSource): KubeConfig {
  const kc = new KubeConfig();
  switch (source.kind) {
    case 'inCluster': kc.loadFromCluster(); break;
    case 'file':
      kc.loadFromFile(source.path);
      if (source.context !== undefined) kc.setCurrentContext(source.context);
      break;
    case 'default': kc.loadFromDefault(); break;
    case 'url':
      kc.loadFromOptions({
        // client-node refuses plain http unless told TLS checks are off: there is no TLS to check.
        clusters: [{ name: 'gpushare', server: source.server, skipTLSVerify: source.server.startsWith('http:') }],
        users: [{ name: 'gpushare', ...(source.token !== undefined ? { token: source.token } : {}) }],
        contexts: [{ name: 'gpushare', cluster: 'gpushare', user: 'gpushare' }],
        currentContext: 'gpushare',
      });
      break;
  }
  return kc;
}

/** The API groups gpushare talks to, made once per configuration. */
export interface ApiClients {
  readonly kubeConfig: KubeConfig;
  readonly core: CoreV1Api;
  readonly resource: ResourceV1Api;
  readonly watch: Watch;
}

export function apiClients(kubeConfig: KubeConfig): ApiClients {
  const cluster = kubeConfig.getCurrentCluster();
  if (cluster === null) throw new Error('the Kubernetes configuration names no current cluster');
  // As KubeConfig.makeApiClient, with the connections kept (KeptConnections says why).
  const config = createConfiguration({ baseServer: new ServerConfiguration(cluster.server, {}), authMethods: { default: new KeptConnections(kubeConfig) } });
  return { kubeConfig, core: new CoreV1Api(config), resource: new ResourceV1Api(config), watch: new Watch(kubeConfig) };
}

/** The TLS options client-node gives the agent it makes for a request: a kept agent serves while they are the same. */
const AGENT_TLS_OPTIONS = ['ca', 'cert', 'key', 'pfx', 'passphrase', 'rejectUnauthorized', 'servername'] as const;

function sameOption(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  return a === b;
}

/**
 * The API calls' authentication (KubeConfig's: token, client certificate, CA) with their
 * connections kept alive. client-node (1.4) makes a new http(s).Agent for every request, so every
 * call opened a connection: a TCP connect, and against a real API server a TLS handshake, on the
 * event loop that answers the kubelet (the device plugin's pod patch after each Allocate: 0.9 ms
 * of the plugin's CPU a patch in its connect alone on the development VM, session 25). Here the
 * agent made for each request is swapped for one kept-alive agent of the same TLS options (made
 * again when they change, e.g. a rotated client certificate). A proxy's agent is left as it is.
 */
class KeptConnections implements SecurityAuthentication {
  private kept: { options: Record<string, unknown>; agent: HttpAgent } | null = null;

  constructor(private readonly kubeConfig: KubeConfig) {}

  getName(): string {
    return 'kubeconfig, connections kept';
  }

  async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await this.kubeConfig.applySecurityAuthentication(context);
    const made = context.getAgent();
    // Only the plain agents client-node makes (a proxy agent is another class).
    if (made === undefined || (made.constructor !== HttpsAgent && made.constructor !== HttpAgent)) return;
    const options = (made as HttpAgent & { options: Record<string, unknown> }).options;
    const kept = this.kept;
    if (kept === null || kept.agent.constructor !== made.constructor || !AGENT_TLS_OPTIONS.every((k) => sameOption(kept.options[k], options[k]))) {
      kept?.agent.destroy();
      const agentOptions = Object.fromEntries(AGENT_TLS_OPTIONS.filter((k) => options[k] !== undefined).map((k) => [k, options[k]]));
      const agent = made.constructor === HttpsAgent ? new HttpsAgent({ ...agentOptions, keepAlive: true }) : new HttpAgent({ keepAlive: true });
      this.kept = { options, agent };
    }
    made.destroy(); // never used: no socket of its own
    context.setAgent(this.kept!.agent);
  }
}

/** A failed call as the server described it (a metav1.Status), or as the network failed it (code 0). */
export interface ApiFailure {
  /** The HTTP status; 0 when no answer came (refused, reset, timed out). */
  readonly code: number;
  /** metav1.Status reason (`Conflict`, `AlreadyExists`, `NotFound`, ...); '' when none. */
  readonly reason: string;
  readonly message: string;
}

export function apiFailure(err: unknown): ApiFailure {
  if (err instanceof ApiException) {
    let body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        // Not a Status: keep the text.
      }
    }
    const status = (body !== null && typeof body === 'object' ? body : {}) as { reason?: unknown; message?: unknown };
    return {
      code: err.code,
      reason: typeof status.reason === 'string' ? status.reason : '',
      message: typeof status.message === 'string' ? status.message : typeof body === 'string' ? body : err.message,
    };
  }
  return { code: 0, reason: '', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Whether the same call may succeed later: no answer at all, 429, or a 5xx. A 409 is not here:
 * it means the caller's view is out of date, so it must read again before it tries again.
 */
export function isTransient(failure: ApiFailure): boolean {
  return failure.code === 0 || failure.code === 429 || failure.code >= 500;
}
