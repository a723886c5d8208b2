/**
 * The tie-break between equally good candidates: ONE PRNG draw per decision, then each tied
 * candidate is ranked by a hash of (draw, node ordinal, GPU set) and the lowest rank wins.
 *
 * Why not reservoir sampling (one draw per tie, in scan order)? It makes the outcome depend on
 * the order and number of candidates scored, so every feasible node must be scored in a fixed
 * order or the draws, and every later placement, change. A hash rank depends only on the
 * candidate itself, so a node's result can be cached (memo.ts) or skipped and the decision
 * stays the same. Over seeds, each of k tied candidates still wins with probability ~1/k.
 *
 * `first` is the other mode, FGD's simulator's: the first GPU set within a node, then the
 * node whose name sorts first (kube-scheduler patched "for reproducibility").
 */
import type { Prng } from './prng.js';

export type TieMode = 'hash' | 'first';

/** murmur3's 32-bit finaliser: a bijection on uint32 that mixes every input bit. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The decision's one draw: a uint32 from the PRNG. */
export function tieDraw(rng: Prng): number {
  return Math.floor(rng.next() * 4294967296) >>> 0;
}

/** A key of a GPU set (node-local indexes, in the order the engine gives them: ascending). */
export function gpuSetKey(gpus: readonly number[]): number {
  let k = 0;
  for (let j = 0; j < gpus.length; j++) k = mix32((k ^ Math.imul((gpus[j] as number) + 1, 0x9e3779b1)) >>> 0);
  return k;
}

/** gpuSetKey([gpu]) without the array. */
export function gpuOneKey(gpu: number): number {
  return mix32(Math.imul(gpu + 1, 0x9e3779b1) >>> 0);
}

/** The rank of a candidate: lower wins among ties. */
export function tieRank(draw: number, ordinal: number, setKey: number): number {
  return mix32((mix32((draw ^ Math.imul(ordinal + 1, 0x27d4eb2f)) >>> 0) ^ setKey) >>> 0);
}
