/** The scheduler's public surface: one engine for the daemon, the Kubernetes extender and the simulator. */
export * from './types.js';
export { buildSnapshot, nodeState, withPlacement, withoutPlacements } from './snapshot.js';
export { schedule, evaluateNodes, DEFAULT_FILTERS, DEFAULT_ADMISSION, type NodeEvaluation, type ScheduleOptions } from './engine.js';
export { DecisionMemo, type MemoTable } from './memo.js';
export type { TieMode } from './tiebreak.js';
export { parsePolicy, policy, POLICY_NAMES, SCORE_PLUGINS, type Policy, type WeightedPlugin } from './policy.js';
export { createPrng, shuffled, type Prng } from './prng.js';
export { ShapeEstimator, fixedWorkload, shapeOf, type Shape, type WorkloadModel } from './workload.js';
export { scheduleGang, type GangDecision } from './gang.js';
export { planPreemption, type PreemptionPlan, type PreemptionAction } from './preempt.js';
export { chooseMigInstance, migProfileBytes, migSlicesOf, type MigChoice } from './mig.js';
export { describeDecision, describeGpuReason, describeNodeReason, describePartitionTooLarge, isPartitionReason } from './explain.js';
export type { AdmissionPlugin, CycleContext, FilterPlugin, PreparedFilter, PreparedScore, ScorePlugin } from './framework.js';
