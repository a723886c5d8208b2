/**
 * Allocate's work done before the kubelet asks (session 26). When the pod watch sees a pod bound
 * to this node with the extender's decision for it, each of its GPU containers not served yet
 * gets its answer made (`containerResponse`: it depends on the pod, the container's decision and
 * the node's paths, never on the replica IDs the kubelet picks) and its directory created (the
 * region's, mounted at /run/gpushare/claim). Allocate then only finds the pod (pending.ts), takes
 * the answer made from that same decision, and writes the ledger: the directory's mkdir and chmod
 * (0.24-0.30 ms a call at p50 on the development VM, journaled metadata writes with a
 * millisecond tail under load) and the answer's objects leave the call's path.
 *
 * An answer is taken only if it was made from the very decision Allocate chose (the same decoded
 * object, from the same annotation text, and the same pod name): otherwise Allocate makes it at
 * call time, as before. A pod that changes is prepared again; a pod that stops waiting for us
 * (deleted, no longer Pending, being deleted, its decision gone or not for this pod or node) has
 * its answers dropped and the directories of its containers not served removed. What is served
 * (Allocate took it) is the ledger's: its directory goes with the ledger entry, as before.
 */
import type { V1Pod } from '@kubernetes/client-node';
import type { Result } from '../../domain/result.js';
import type { ContainerDecision, PodDecision } from '../hami/decision.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { allocatedIndexes } from './allocated.js';
import { containerKey, type PendingContainer } from './pending.js';
import type { ContainerAllocateResponse, PodRef } from './response.js';

/** One container's answer, made ahead. */
interface Made {
  readonly pod: PodRef;
  readonly container: ContainerDecision;
  readonly answer: ContainerAllocateResponse;
}

export interface PreparedOptions {
  readonly node: string;
  /** The decision codec: the same memo Allocate's pendingContainer uses, so a decision is one object to both. */
  readonly decode: (text: string) => Result<PodDecision>;
  /** Whether the ledger has served this container (its key: containerKey). */
  readonly served: (key: string) => boolean;
  /** Whether this node has the GPU (a decision naming another node's GPU is refused by Allocate: nothing is made for it). */
  readonly hasGpu: (uuid: string) => boolean;
  /** The answer, as Allocate makes it at call time. */
  readonly answer: (pod: PodRef, container: ContainerDecision) => ContainerAllocateResponse;
  /** Creates the container's directory (idempotent); throws on failure. */
  readonly makeDir: (podUid: string, index: number) => void;
  /** Removes a directory made here that no Allocate took (the pod went). */
  readonly dropDir: (podUid: string, index: number) => void;
  /** A directory that could not be made: the answer is made at call time instead (with its own mkdir). */
  readonly onError?: (podUid: string, index: number, error: Error) => void;
}

export class PreparedAnswers {
  /** By pod uid, then by container key. */
  private readonly pods = new Map<string, Map<string, Made>>();

  constructor(private readonly o: PreparedOptions) {}

  /** A pod was added or changed: its unserved GPU containers' answers made (again if their decision changed), or dropped if it no longer waits for us. */
  update(pod: V1Pod): void {
    const md = pod.metadata;
    const uid = md?.uid;
    if (uid === undefined) return;
    const decision = this.decisionOf(pod);
    if (decision === null) {
      this.remove(uid);
      return;
    }
    const ref: PodRef = { namespace: md?.namespace ?? 'default', name: md?.name ?? '', uid };
    let annotated: Result<ReadonlySet<number>> | undefined;
    const had = this.pods.get(uid);
    const next = new Map<string, Made>();
    for (const c of decision.containers) {
      const key = containerKey(uid, c.index);
      if (this.o.served(key)) continue; // the ledger's now (and its directory with it)
      if (md?.annotations?.[GPUSHARE_ANNOTATION.allocated] !== undefined) {
        annotated ??= allocatedIndexes(md.annotations);
        if (annotated.ok && annotated.value.has(c.index)) continue; // served before a lost ledger: never served again
      }
      if (c.gpus.some((g) => !this.o.hasGpu(g.uuid))) continue; // Allocate refuses it
      const old = had?.get(key);
      if (old !== undefined && old.container === c && old.pod.name === ref.name && old.pod.namespace === ref.namespace) {
        next.set(key, old);
        continue;
      }
      if (old === undefined) {
        try {
          this.o.makeDir(uid, c.index);
        } catch (e) {
          this.o.onError?.(uid, c.index, e as Error);
          continue;
        }
      }
      next.set(key, { pod: ref, container: c, answer: this.o.answer(ref, c) });
    }
    // Containers prepared before and not now: served meanwhile (the ledger's), or gone from the decision.
    if (had !== undefined) for (const [key, m] of had) if (!next.has(key) && !this.o.served(key)) this.o.dropDir(uid, m.container.index);
    if (next.size === 0) this.pods.delete(uid);
    else this.pods.set(uid, next);
  }

  /** The pod is gone (or no longer waits): its answers dropped and the directories no Allocate took removed. */
  remove(uid: string): void {
    const had = this.pods.get(uid);
    if (had === undefined) return;
    this.pods.delete(uid);
    for (const [key, m] of had) if (!this.o.served(key)) this.o.dropDir(uid, m.container.index);
  }

  /**
   * The answer made ahead for the container Allocate chose, if it was made from that very
   * decision; it is no longer held here either way (Allocate serves the container now: its
   * directory becomes the ledger entry's). Undefined: make it at call time.
   */
  take(found: PendingContainer): ContainerAllocateResponse | undefined {
    const made = this.pods.get(found.pod.uid);
    const key = containerKey(found.pod.uid, found.container.index);
    const m = made?.get(key);
    if (made === undefined || m === undefined) return undefined;
    made.delete(key);
    if (made.size === 0) this.pods.delete(found.pod.uid);
    return m.container === found.container && m.pod.name === found.pod.name && m.pod.namespace === found.pod.namespace ? m.answer : undefined;
  }

  /** Containers with an answer made ahead (tests). */
  keys(): string[] {
    return [...this.pods.values()].flatMap((m) => [...m.keys()]);
  }

  /** The decision, when the pod is one Allocate may serve: bound here, Pending, not being deleted, its decision valid and its own. */
  private decisionOf(pod: V1Pod): PodDecision | null {
    const md = pod.metadata;
    if (pod.spec?.nodeName !== this.o.node) return null;
    if (md?.deletionTimestamp !== undefined && md.deletionTimestamp !== null) return null;
    const phase = pod.status?.phase;
    if (phase !== undefined && phase !== 'Pending') return null;
    const text = md?.annotations?.[GPUSHARE_ANNOTATION.decision];
    if (text === undefined) return null;
    const d = this.o.decode(text);
    if (!d.ok || d.value.podUid !== md?.uid || d.value.node !== this.o.node) return null;
    return d.value;
  }
}
