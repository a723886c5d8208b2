/** Who asks: the Unix socket's user (admin), or a bearer token's tenant on TCP. */
export interface Principal {
  readonly actor: string;
  readonly role: 'admin' | 'user';
  readonly tenant: string | null;
  /** The highest priority it may submit at (a user token's; absent: no limit). */
  readonly maxPriority?: number;
}
