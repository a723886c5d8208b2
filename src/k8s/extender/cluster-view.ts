/**
 * What the extender knows of the cluster: every node's GPUs (from its inventory annotation) and
 * every slice held on them, by pods bound with a decision and by reservations bind made and the
 * watch has not shown back yet, as one scheduler snapshot kept current node by node.
 *
 * No I/O and no lock: the watch (kube-client.ts) feeds it, the handlers read it, and bind
 * decides and reserves in one synchronous step (JavaScript runs it to the end before any other
 * request's code), so two binds can never both take the same room.
 */
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { buildSnapshot, nodeState, type ClusterSnapshot, type NodeSpec, type NodeState, type Placement } from '../../scheduler/index.js';
import { decodeDecision, type PodDecision } from '../hami/decision.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { decodeNodeGpus, gpuSpecOf } from '../hami/node-gpus.js';
import { isSuspended } from '../hami/suspension.js';

/** Host CPU and memory are the kube-scheduler's to check: the extender's nodes never run short of them. */
const UNLIMITED = Number.MAX_SAFE_INTEGER;

/** How a pod's slices may be preempted (namespace / priority class policy, config.ts). */
export type SuspendPolicy = (pod: { namespace: string; priorityClassName: string | null }) => boolean;

interface PodEntry {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly node: string;
  readonly decision: PodDecision;
  readonly placements: readonly Placement[];
  /** Made by bind, not yet seen back from the API server. */
  readonly reserved: boolean;
}

/** A node the view refuses to schedule on, and why (a bad inventory annotation). */
export interface NodeProblem {
  readonly node: string;
  readonly message: string;
}

export class ClusterView {
  private readonly specs = new Map<string, NodeSpec>();
  private readonly invalidInventory = new Map<string, string>();
  private readonly pods = new Map<string, PodEntry>();
  private readonly podsByNode = new Map<string, Set<string>>();
  private states: NodeState[] = [];
  private byName = new Map<string, number>();
  private base: ClusterSnapshot | null = null;
  private current: ClusterSnapshot | null = null;
  private empty: ClusterSnapshot | null = null;
  private structureDirty = true;
  private readonly dirtyNodes = new Set<string>();
  /** Bumped on every change: answers cached for one generation are stale in the next. */
  generation = 0;
  /** Numbers the snapshots: bumped whenever snapshot() makes another one. */
  private seq = 0;
  /** The node ordinals each snapshot since `logFrom` changed from the one before (oldest first). */
  private changeLog: { readonly seq: number; readonly ordinals: readonly number[] }[] = [];
  /** The oldest snapshot changedSince answers from (a rebuild, or the log's length, moves it). */
  private logFrom = 0;
  /** Bumped when problems() changes (a node refused for its inventory, or no longer). */
  problemsVersion = 0;

  constructor(private readonly suspendable: SuspendPolicy = () => false) {}

  /** A node added or changed (from the watch); one without the inventory annotation has no GPUs here. */
  observeNode(node: V1Node): void {
    const name = node.metadata?.name;
    if (!name) return;
    const text = node.metadata?.annotations?.[GPUSHARE_ANNOTATION.nodeGpus];
    if (text === undefined) {
      this.removeNode(name);
      return;
    }
    const r = decodeNodeGpus(text);
    if (!r.ok) {
      const message = r.issues.map((i) => `${i.field}: ${i.message}`).join('; ');
      const before = this.invalidInventory.get(name);
      const versions = this.problemsVersion;
      this.removeNode(name);
      this.invalidInventory.set(name, message);
      // The same refusal again (a resync) leaves answers kept for the problems as they are.
      this.problemsVersion = before === message ? versions : versions + 1;
      return;
    }
    if (this.invalidInventory.delete(name)) this.problemsVersion++;
    const spec: NodeSpec = { name, cpuMilli: UNLIMITED, memoryBytes: UNLIMITED, gpus: r.value.map(gpuSpecOf) };
    const old = this.specs.get(name);
    if (old && JSON.stringify(old.gpus) === JSON.stringify(spec.gpus)) return;
    this.specs.set(name, spec);
    this.structureDirty = true;
    this.generation++;
  }

  removeNode(name: string): void {
    if (this.invalidInventory.delete(name)) this.problemsVersion++;
    if (!this.specs.delete(name)) return;
    this.structureDirty = true;
    this.generation++;
  }

  /** A pod added or changed (from the watch); `deleted` for a DELETED event. */
  observePod(pod: V1Pod, deleted = false): void {
    const uid = pod.metadata?.uid;
    if (!uid) return;
    const phase = pod.status?.phase;
    const text = pod.metadata?.annotations?.[GPUSHARE_ANNOTATION.decision];
    // A suspended pod's GPU memory is in host memory and its processes are stopped: its slices
    // hold no room until the node agent resumes it (and removes the annotation).
    const gone = deleted || phase === 'Succeeded' || phase === 'Failed' || isSuspended(pod.metadata?.annotations);
    if (gone) {
      this.drop(uid);
      return;
    }
    const decision = text === undefined ? null : decodeDecision(text);
    if (decision === null || !decision.ok || decision.value.podUid !== uid) {
      // No (valid) decision yet: a reservation bind made stays until the pod shows it or goes.
      const held = this.pods.get(uid);
      if (held && !held.reserved) this.drop(uid);
      return;
    }
    const d = decision.value;
    // A decision for another node than the pod is bound to is stale (the bind that wrote it failed).
    if (pod.spec?.nodeName && pod.spec.nodeName !== d.node) {
      this.drop(uid);
      return;
    }
    if (!pod.spec?.nodeName && !this.pods.get(uid)?.reserved) return;
    const priority = typeof pod.spec?.priority === 'number' ? pod.spec.priority : 0;
    const namespace = pod.metadata?.namespace ?? 'default';
    const suspendable = this.suspendable({ namespace, priorityClassName: pod.spec?.priorityClassName ?? null });
    this.put({ uid, namespace, name: pod.metadata?.name ?? '', node: d.node, decision: d, placements: placementsOf(d, priority, suspendable), reserved: false });
  }

  /** Holds `placements` for pod `uid` (bind, before its writes); replaces an earlier hold of the same pod. */
  reserve(entry: { uid: string; namespace: string; name: string; decision: PodDecision; placements: readonly Placement[] }): void {
    this.put({ ...entry, node: entry.decision.node, reserved: true });
  }

  /** Gives a reservation back (its bind failed); a pod the API server shows bound is kept. */
  release(uid: string): void {
    if (this.pods.get(uid)?.reserved) this.drop(uid);
  }

  /** The pod's decision as the view holds it (reserved or bound), or null. */
  decisionOf(uid: string): PodDecision | null {
    return this.pods.get(uid)?.decision ?? null;
  }

  /** The pod holding placement `id` (ids are `<pod uid>/<container index>`). */
  podOfPlacement(id: string): { uid: string; namespace: string; name: string } | null {
    const e = this.pods.get(id.slice(0, id.lastIndexOf('/')));
    return e ? { uid: e.uid, namespace: e.namespace, name: e.name } : null;
  }

  /** Why the view cannot schedule on `node` (null: it can, or it has no inventory at all). */
  problemOf(node: string): string | null {
    return this.invalidInventory.get(node) ?? null;
  }

  /** Every node refused for a bad inventory annotation, with the reason. */
  problems(): IterableIterator<[string, string]> {
    return this.invalidInventory.entries();
  }

  /** How many nodes problems() lists. */
  get problemCount(): number {
    return this.invalidInventory.size;
  }

  hasNode(node: string): boolean {
    return this.specs.has(node);
  }

  get nodeCount(): number {
    return this.specs.size;
  }

  /** The cluster now. The same object until something changes. */
  snapshot(): ClusterSnapshot {
    if (this.structureDirty) this.rebuild();
    if (this.dirtyNodes.size > 0 || this.current === null) {
      const ordinals: number[] = [];
      for (const name of this.dirtyNodes) {
        const i = this.byName.get(name);
        const spec = this.specs.get(name);
        if (i === undefined || !spec) continue;
        this.states[i] = nodeState(spec, i, this.placementsOn(name));
        ordinals.push(i);
      }
      this.dirtyNodes.clear();
      const base = this.base as ClusterSnapshot;
      this.current = { ...base, nodes: this.states.slice() };
      this.changeLog.push({ seq: ++this.seq, ordinals });
      if (this.changeLog.length > CHANGE_LOG) this.logFrom = (this.changeLog.shift() as { seq: number }).seq;
    }
    return this.current;
  }

  /** The number of the snapshot snapshot() last returned. */
  get snapshotSeq(): number {
    return this.seq;
  }

  /**
   * The ordinals of the nodes whose state object in the current snapshot is another than in
   * snapshot `seq` (a superset: a node changed and changed back is in it), or null when that
   * snapshot is too old to say (or of another node index). Call snapshot() first.
   */
  changedSince(seq: number): number[] | null {
    if (seq < this.logFrom || seq > this.seq) return null;
    const out: number[] = [];
    for (const e of this.changeLog) if (e.seq > seq) for (const i of e.ordinals) out.push(i);
    return out;
  }

  /** Every node with nothing on it: what preemption could reach at best (filter's unresolvable test). */
  emptySnapshot(): ClusterSnapshot {
    if (this.structureDirty) this.rebuild();
    this.empty ??= buildSnapshot([...this.specs.values()]);
    return this.empty;
  }

  private rebuild(): void {
    const specs = [...this.specs.values()];
    const placements = specs.flatMap((s) => this.placementsOn(s.name));
    this.base = buildSnapshot(specs, placements);
    this.states = this.base.nodes.slice();
    this.byName = new Map(this.base.nodeByName);
    this.current = this.base;
    this.empty = null;
    this.structureDirty = false;
    this.dirtyNodes.clear();
    this.changeLog = [];
    this.logFrom = ++this.seq;
  }

  private placementsOn(node: string): Placement[] {
    const uids = this.podsByNode.get(node);
    if (!uids || !this.specs.has(node)) return [];
    const out: Placement[] = [];
    const spec = this.specs.get(node) as NodeSpec;
    for (const uid of uids) {
      const e = this.pods.get(uid);
      // A decision naming GPUs the node no longer lists (its inventory shrank) holds nothing.
      if (e && e.placements.every((p) => p.gpus.every((g) => g.gpu < spec.gpus.length))) out.push(...e.placements);
    }
    return out;
  }

  private put(e: PodEntry): void {
    this.drop(e.uid);
    this.pods.set(e.uid, e);
    let set = this.podsByNode.get(e.node);
    if (!set) this.podsByNode.set(e.node, (set = new Set()));
    set.add(e.uid);
    this.touch(e.node);
  }

  private drop(uid: string): void {
    const e = this.pods.get(uid);
    if (!e) return;
    this.pods.delete(uid);
    this.podsByNode.get(e.node)?.delete(uid);
    this.touch(e.node);
  }

  private touch(node: string): void {
    this.generation++;
    if (this.specs.has(node)) this.dirtyNodes.add(node);
  }
}

/** Snapshots whose changes are kept for changedSince (a table asked again after more is scanned whole). */
const CHANGE_LOG = 256;

/** The scheduler's placements for a decision: one per container, id `<pod uid>/<container index>`. */
export function placementsOf(d: PodDecision, priority: number, suspendable: boolean): Placement[] {
  return d.containers.map((c) => ({
    id: `${d.podUid}/${c.index}`,
    node: d.node,
    gpus: c.gpus.map((g) => ({ gpu: g.index, memoryBytes: g.memoryBytes, computeMilli: g.computeMilli, mig: null })),
    cpuMilli: 0,
    memoryBytes: 0,
    priority,
    tenant: null,
    exclusive: c.exclusive,
    suspendable,
    gang: null,
  }));
}
