/**
 * The API-server connection every gpushare Kubernetes component uses, over
 * @kubernetes/client-node: where the configuration comes from, the typed API groups, and what a
 * failed call means (the metav1.Status the server answered, and whether trying again can help).
 */
import { ApiException, CoreV1Api, KubeConfig, ResourceV1Api, Watch } from '@kubernetes/client-node';

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
  return { kubeConfig, core: kubeConfig.makeApiClient(CoreV1Api), resource: kubeConfig.makeApiClient(ResourceV1Api), watch: new Watch(kubeConfig) };
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
