/**
 * Several processes on one database file (the `cluster` option): one process, the primary, runs the
 * write queue; the others (secondaries) forward `submit()` requests and `@SerializedWrite({ forward:
 * true })` calls to it over a Unix domain socket and re-emit its after-commit changes. Every field
 * is optional; `cluster: {}` turns it on with the defaults.
 */
export interface ClusterOptions {
  /**
   * `'auto'`: whoever holds the primary lock (an exclusive lock on a file next to the database,
   * released by the kernel when its holder dies) is the primary; the others keep trying to take it
   * and promote themselves when they get it. `'primary'`: this process must be the primary
   * (attaching fails when another holds the lock). `'secondary'`: never the primary, always forwards.
   * @default 'auto'
   */
  role?: ClusterRoleOption;
  /**
   * Path of the Unix domain socket the primary listens on (created owner-only, mode 0600).
   * @default `<database>.wc.sock` next to the database file (in the temp directory, named after a
   *   hash of the database path, when that path is too long for a socket)
   */
  socketPath?: string;
  /** Path of the primary lock file. @default `<database>.primary-lock` next to the database file */
  lockPath?: string;
  /**
   * A shared secret every secondary presents in its handshake; a connection without it (or with
   * another) is refused. The socket is owner-only already; add one when several users share it.
   */
  secret?: string;
  /**
   * How often a secondary pings the primary. A primary that answers nothing (not even a ping) for
   * three periods is reported unresponsive (`PrimaryLost`, health down) until it answers again.
   * @default 500
   */
  heartbeatMs?: number;
  /**
   * How often a secondary retries the lock and the connection while it has no primary (a dead
   * primary's lock is free at once; this bounds failover together with the new primary's start).
   * @default 50
   */
  retryMs?: number;
  /**
   * Deadline of a forwarded write whose caller gave none (no `timeoutMs`, and no module `timeoutMs`):
   * a secondary never leaves a caller waiting for ever for a primary. Never sent by then:
   * `UNAVAILABLE` (certainly not written); sent but unanswered: `TIMEOUT` (may have been written;
   * a retry with the same `meta.requestId` is safe).
   * @default 30000
   */
  forwardTimeoutMs?: number;
  /**
   * How long the primary remembers a request id and its outcome (the exactly-once window): a
   * request sent again with the same id within it gets the recorded outcome without running again.
   * @default 86400000 (24 h)
   */
  dedupeWindowMs?: number;
  /** How often the primary deletes request ids older than `dedupeWindowMs`. @default 60000 */
  pruneIntervalMs?: number;
  /** How long the primary waits for a new connection's handshake before closing it. @default 2000 */
  handshakeTimeoutMs?: number;
  /** Name of the table of request ids and outcomes, in the coordinator's database. @default '_write_coordinator_requests' */
  requestsTable?: string;
}

/** The `role` option of {@link ClusterOptions}. */
export type ClusterRoleOption = 'auto' | 'primary' | 'secondary';

/** @internal {@link ClusterOptions} after defaults and validation. */
export interface ResolvedClusterOptions {
  readonly role: ClusterRoleOption;
  readonly socketPath: string | undefined;
  readonly lockPath: string | undefined;
  readonly secret: string | undefined;
  readonly heartbeatMs: number;
  readonly retryMs: number;
  readonly forwardTimeoutMs: number;
  readonly dedupeWindowMs: number;
  readonly pruneIntervalMs: number;
  readonly handshakeTimeoutMs: number;
  readonly requestsTable: string;
}

/** @internal The default of every field of {@link ClusterOptions}. */
export const CLUSTER_DEFAULTS: ResolvedClusterOptions = Object.freeze({
  role: 'auto',
  socketPath: undefined,
  lockPath: undefined,
  secret: undefined,
  heartbeatMs: 500,
  retryMs: 50,
  forwardTimeoutMs: 30_000,
  dedupeWindowMs: 86_400_000,
  pruneIntervalMs: 60_000,
  handshakeTimeoutMs: 2_000,
  requestsTable: '_write_coordinator_requests',
});
