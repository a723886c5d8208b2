// The median of a benchmark's rounds with a 95% percentile-bootstrap interval (seeded: the same
// rounds give the same interval), for benchmarks that report "median (low-high)".

/** The p-th percentile (nearest rank) of xs. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
}

/** mulberry32: a small seeded generator, so a rerun on the same data draws the same resamples. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Median and 95% bootstrap interval of the median: { median, low, high }. */
export function medianInterval(xs: readonly number[], resamples = 2000): { median: number; low: number; high: number } {
  const median = percentile(xs, 50);
  if (xs.length < 3) return { median, low: NaN, high: NaN };
  const rand = seeded(0x2545f491);
  const meds: number[] = [];
  for (let b = 0; b < resamples; b++) meds.push(percentile(Array.from(xs, () => xs[Math.floor(rand() * xs.length)] ?? NaN), 50));
  return { median, low: percentile(meds, 2.5), high: percentile(meds, 97.5) };
}

/** "median (low-high)" with `digits` decimals. */
export function formatInterval(xs: readonly number[], digits: number): string {
  const { median, low, high } = medianInterval(xs);
  return Number.isNaN(low) ? median.toFixed(digits) : `${median.toFixed(digits)} (${low.toFixed(digits)}-${high.toFixed(digits)})`;
}
