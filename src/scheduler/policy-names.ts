// Kept apart from policy.ts so that `gpushare simulate --help` can name the policies without
// loading the scheduler's plugins.

/** The policy names of issue 5 in the order reports list them, and `fgd`, the published policy ported as its authors run it, to compare against. */
export const POLICY_NAMES = ['random', 'binpack', 'spread', 'bestfit', 'topology', 'fragmentation', 'fgd'] as const;
