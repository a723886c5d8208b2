/**
 * A length of time as people write it on a command line (`90s`, `15m`, `12h`, `30d`, `2w`):
 * the CLI and the daemon read token lifetimes with the same function.
 */
const UNIT_MS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Milliseconds, or null when `text` is not a whole number followed by s, m, h, d or w (at most ten years). */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d{1,6})\s*([smhdw])\s*$/.exec(text);
  if (!m) return null;
  const ms = Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return ms > 0 && ms <= 10 * 365 * 86_400_000 ? ms : null;
}
