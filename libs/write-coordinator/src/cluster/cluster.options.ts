/**
 * Several processes on one database file (the `cluster` option): one process, the primary, runs the
 * write queue; the others (secondaries) forward `submit()` requests and `@SerializedWrite({ forward:
 * true })` calls to it over a Unix domain socket and re-emit its after-commit changes. Every field
 * is optional; `cluster: {}` turns it on with the defaults. Several hosts, each with its own file
 * replicated by LiteFS: `primary: { strategy: 'litefs' }`, `secret` and `http` (docs/multi-host.md).
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
  /**
   * How the primary is found. `{ strategy: 'lock' }` (the default): processes of one host sharing
   * one database file, the primary lock decides, they talk over a Unix socket. `{ strategy:
   * 'litefs' }`: hosts replicated by LiteFS, LiteFS decides (its event stream and `.primary` file),
   * writes are forwarded over HTTP (`http`). `{ strategy: 'static', primary }`: a fixed primary
   * host, forwarded over HTTP. See docs/multi-host.md.
   * @default { strategy: 'lock' }
   */
  primary?: PrimaryStrategyOptions;
  /**
   * Forwarding between hosts (the `litefs` and `static` strategies): the primary listens on
   * `port`, the others connect to `url(primaryHostname)`. Needs `secret`.
   */
  http?: HttpForwardingOptions;
  /**
   * Read your writes (LiteFS): after a forwarded write committed, how long a replica waits for its
   * own position (TXID) to reach the primary's before it answers, so that the caller's next read
   * here sees the write. Past it: `REPLICATION_TIMEOUT` (the write is done). `false`: answer at
   * once. Ignored with the `lock` strategy (one file: nothing to wait for).
   * @default 5000
   */
  readYourWritesMs?: number | false;
}

/** The `primary` option of {@link ClusterOptions}: one of the primary-resolution strategies. */
export type PrimaryStrategyOptions = LockStrategyOptions | LiteFsStrategyOptions | StaticStrategyOptions;

/** One host: the holder of the primary lock (`lockPath`) is the primary. */
export interface LockStrategyOptions {
  strategy: 'lock';
}

/**
 * LiteFS decides: the node whose LiteFS holds the primary lease is the primary. Read from LiteFS's
 * event stream (`init` / `primaryChange`), or, while the stream is unreachable, from the mount's
 * `.primary` file (present: a replica connected to that primary; absent: primary *or* cut off, so
 * the node then waits rather than write).
 */
export interface LiteFsStrategyOptions {
  strategy: 'litefs';
  /** The LiteFS mount directory (where `.primary` and `<db>-pos` are). @default the database file's directory */
  mountDir?: string;
  /**
   * LiteFS's event stream. `false` polls `.primary` only: replicas then follow the primary, but no
   * host can tell "I am the primary" from "I am cut off" (both have no `.primary`), so none ever
   * writes: use `false` only on hosts that must never be the primary.
   * @default 'http://localhost:20202/events'
   */
  eventsUrl?: string | false;
  /** How often `.primary` is read while the event stream is down (at start, once at once). @default 1000 */
  pollMs?: number;
}

/** A fixed primary: the host whose `hostname` equals `primary` writes, the others forward to it. */
export interface StaticStrategyOptions {
  strategy: 'static';
  /** The primary's hostname (as the others reach it, through `http.url`). */
  primary: string;
  /** This host's name. @default os.hostname() */
  hostname?: string;
}

/** How hosts forward writes to the primary over HTTP (see {@link ClusterOptions.http}). */
export interface HttpForwardingOptions {
  /** Port the primary listens on for forwarded writes. @default 20210 */
  port?: number;
  /** Address the primary binds. @default '0.0.0.0' */
  host?: string;
  /** Path of the forwarding endpoint. @default '/_write-coordinator' */
  path?: string;
  /**
   * HTTPS: the primary serves with `key` and `cert` (PEM); replicas verify the primary's certificate
   * against `ca` (default: the system's). Without it, plain HTTP: keep it on a private network.
   */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
  /**
   * The forwarding URL of a primary named `hostname`.
   * @default `http(s)://<hostname>:<port><path>`
   */
  url?: (hostname: string) => string;
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
  readonly primary: PrimaryStrategyOptions;
  readonly http: HttpForwardingOptions | undefined;
  readonly readYourWritesMs: number | false;
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
  primary: Object.freeze({ strategy: 'lock' }),
  http: undefined,
  readYourWritesMs: 5_000,
});

/** @internal The defaults of {@link HttpForwardingOptions}. */
export const HTTP_FORWARDING_DEFAULTS = Object.freeze({ port: 20210, host: '0.0.0.0', path: '/_write-coordinator' });

/** @internal The defaults of {@link LiteFsStrategyOptions}. */
export const LITEFS_DEFAULTS = Object.freeze({ eventsUrl: 'http://localhost:20202/events', pollMs: 1_000 });
