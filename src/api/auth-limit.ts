/**
 * Failed authentications per remote address: after `limit` failures within `windowMs`, the
 * address is refused (429, Retry-After) until the window that began with its first failure
 * ends, whatever it sends, so guessing tokens gets one try in a few thousand seconds' worth.
 * In this module rather than @fastify/rate-limit: that is not a dependency, and what is needed
 * (count failures only, not requests) is a map and a clock.
 */
export interface AuthLimitOptions {
  readonly limit: number;
  readonly windowMs: number;
  readonly now?: () => number;
  /** At most this many addresses remembered; past it, windows that ended are dropped first. */
  readonly maxAddresses?: number;
}

export class FailedAuthLimiter {
  private readonly failures = new Map<string, { since: number; count: number }>();
  private readonly now: () => number;

  constructor(private readonly options: AuthLimitOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Seconds until `address` may try again; 0: it may now. */
  retryAfter(address: string): number {
    const f = this.failures.get(address);
    if (f === undefined || f.count < this.options.limit) return 0;
    const left = f.since + this.options.windowMs - this.now();
    if (left <= 0) {
      this.failures.delete(address);
      return 0;
    }
    return Math.ceil(left / 1000);
  }

  /** Counts a failure; true when this one reached the limit (the moment to say so in the log). */
  fail(address: string): boolean {
    const at = this.now();
    let f = this.failures.get(address);
    if (f === undefined || at - f.since >= this.options.windowMs) {
      if (f === undefined && this.failures.size >= (this.options.maxAddresses ?? 100_000)) this.prune(at);
      f = { since: at, count: 0 };
      this.failures.set(address, f);
    }
    f.count += 1;
    return f.count === this.options.limit;
  }

  private prune(at: number): void {
    for (const [address, f] of this.failures) if (at - f.since >= this.options.windowMs) this.failures.delete(address);
    // Still full: forget the oldest (a map iterates in insertion order).
    const over = this.failures.size - Math.floor((this.options.maxAddresses ?? 100_000) * 0.9);
    if (over > 0) for (const address of [...this.failures.keys()].slice(0, over)) this.failures.delete(address);
  }
}

/**
 * What failures are counted by: an IPv4 address as it is (an IPv4-mapped IPv6 one as its IPv4),
 * an IPv6 address by its /64 network. One host on IPv6 usually holds a whole /64, so counting
 * single addresses would give it 2^64 fresh tries.
 */
export function limitKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!address.includes(':')) return address;
  const groups = expandIpv6(address.replace(/%.*$/, ''));
  return groups === null ? address : `${groups.slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address, lowercased without leading zeros; null: not one. */
function expandIpv6(address: string): string[] | null {
  const halves = address.split('::');
  if (halves.length > 2) return null;
  const part = (s: string | undefined): string[] => (s === undefined || s === '' ? [] : s.split(':'));
  const head = part(halves[0]);
  const tail = part(halves[1]);
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 1 ? 0 : fill).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => Number.parseInt(g, 16).toString(16));
}
