/**
 * Primary resolution as a strategy: who may write, and where the others send their writes. The
 * role machine (`cluster-node.ts`) asks an election only these questions, so that one host (the
 * primary lock), LiteFS (its `.primary` file and event stream) and a fixed configuration drive the
 * same machinery.
 */

/** What an election knows now. */
export type PrimaryView =
  /** This node is the primary: it may write its database file. */
  | { readonly kind: 'primary' }
  /** Another node is the primary; `primary` is its hostname (LiteFS, static) or undefined (lock: the socket). */
  | { readonly kind: 'replica'; readonly primary?: string }
  /** No primary is known (starting, cut off from the primary, primary lease lost): writes wait. */
  | { readonly kind: 'unknown'; readonly reason: string };

/** One primary-resolution strategy (see `cluster.primary`). */
export interface PrimaryElection {
  /** `'lock'`, `'litefs'` or `'static'`: for logs and `metrics().cluster.strategy`. */
  readonly strategy: 'lock' | 'litefs' | 'static';
  /**
   * Whether this node's database file accepts writes only while it is the primary (LiteFS, static:
   * every host has its own file) rather than from every process (lock: one shared file). When true,
   * local writes (`run()`, transparent writes) on a non-primary fail with `NOT_PRIMARY`.
   */
  readonly writesNeedPrimary: boolean;
  /**
   * Starts watching (LiteFS: the event stream, else polling `.primary`). Resolves once a first view
   * is known, or after `settleMs` with `unknown`. `onChange` is called (synchronously or not) every
   * time {@link view} may have changed.
   */
  start(onChange: () => void, settleMs: number): Promise<void>;
  /** The current view. Cheap: called on every write on a node whose writes need the primary. */
  view(): PrimaryView;
  /**
   * Claims the primary role when this strategy lets this node take it now (lock: tries the lock;
   * LiteFS, static: true exactly when {@link view} says `primary`). The role machine calls it
   * before it promotes itself, and again on every change while it is the primary: false then
   * means it must step down.
   */
  claim(): boolean;
  /**
   * Looks again now, when the view may be stale (LiteFS: `.primary` read again while the event
   * stream is down): called when the database file refused a write on a host that thinks it is
   * the primary. Optional: strategies that always know need none.
   */
  recheck?(): void;
  /** Gives up the role claimed (lock: frees it; others: nothing to do). */
  release(): void;
  /** Stops watching. Idempotent. */
  stop(): void;
}

/**
 * This node's replication position (LiteFS's `<db>-pos` TXID), for read-your-writes and the lag
 * in health: the primary reads it after a commit and sends it with the answer; a replica waits
 * until its own reaches it.
 */
export interface ReplicationPosition {
  /** The TXID now; undefined when it cannot be read (no `-pos` file yet). */
  current(): number | undefined;
  /** `performance.now()` of the last time {@link current} was seen to advance (or of start). */
  readonly lastAdvanceAt: number;
  /**
   * Resolves once {@link current} ≥ `txid`; resolves false (never rejects) after `timeoutMs` or
   * when `signal` aborts, true when reached.
   */
  waitFor(txid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  /** Stops watching. Idempotent. */
  stop(): void;
}
