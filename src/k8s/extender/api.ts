/**
 * What the extender needs of the API server, as an interface: the handlers are tested against
 * an in-memory implementation, kube-client.ts implements it over @kubernetes/client-node.
 */
import type { V1Pod } from '@kubernetes/client-node';

/** An API server answer other than success, with its HTTP status (409 conflict, 404 gone, ...). */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface PodRef {
  readonly namespace: string;
  readonly name: string;
}

export interface PodBinder {
  /** The pod as the API server has it now. */
  getPod(ref: PodRef): Promise<V1Pod>;
  /**
   * Sets `annotations` on the pod, only if it is still the object `uid` at `resourceVersion`
   * (a merge patch carrying both: the API server answers 409 otherwise). Returns the new pod.
   */
  annotatePod(ref: PodRef & { uid: string; resourceVersion: string }, annotations: Readonly<Record<string, string>>): Promise<V1Pod>;
  /** POSTs the pod's Binding to `node` (pods/binding, with the uid as precondition). */
  bindPod(ref: PodRef & { uid: string }, node: string): Promise<void>;
}
