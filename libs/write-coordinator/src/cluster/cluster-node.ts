import type { WriteChange } from '../changes/write-change';
import { InvalidOptionsError, ShutdownError } from '../errors';
import type { ResolvedClusterOptions } from './cluster.options';
import { EndpointHost, PrimaryEndpoint } from './primary-endpoint';
import { PrimaryLink, unlessApplied } from './primary-link';
import { PrimaryLock, primaryLockPath } from './primary-lock';
import type { ForwardedCall, RequestFrame } from './protocol';
import type { ClusterTransport, FrameServer } from './transport';
import { defaultSocketPath, UnixSocketTransport } from './unix-socket-transport';

/** How long a stepping-down primary waits for its last answers and goodbyes to reach the secondaries. */
const GOODBYE_FLUSH_MS = 1_000;

/** How many of the largest frames a secondary may leave unread before the primary drops it. */
const BACKLOG_FRAMES = 4;

/** The role of a process in a cluster. */
export type ClusterRole = 'primary' | 'secondary';

/** `metrics().cluster`: where this process stands in its cluster. */
export interface ClusterMetrics {
  /** `primary`: runs the writes; `secondary`: forwards them (also before the first decision). */
  role: ClusterRole;
  /** This process. */
  pid: number;
  /** The primary's process id, when known (this process's own on the primary). */
  primaryPid?: number;
  /** On the primary: secondaries connected now; on a secondary: 1 while connected to the primary. */
  peers: number;
  /** Forwarded requests: received by the primary, or sent by a secondary (first sends), since start. */
  forwarded: number;
  /** On a secondary: forwarded requests sent again, with their request id, after their channel closed. */
  resent: number;
  /** Forwarded requests not answered yet (running on the primary; waiting on a secondary). */
  forwardedInFlight: number;
  /** On a secondary: false once the primary answered nothing for three heartbeats. */
  primaryResponsive: boolean;
  /** On a secondary: changes of the primary this process will never receive (see `ChangesMissed`). */
  changesMissed: number;
  /** On a secondary: ms since it last had a primary to forward to (0 while connected, and on the primary). */
  withoutPrimaryMs: number;
  /** Where the primary listens (the socket path). */
  address: string;
  /** Times this process changed role (0 before the first decision, then 1, 2 on a promotion). */
  roleChanges: number;
}

/** What a cluster node tells its host (the Nest face turns these into events). */
export interface ClusterObserver {
  roleChanged?(role: ClusterRole, previous: ClusterRole | undefined, primaryPid: number | undefined): void;
  primaryLost?(primaryPid: number | undefined, reason: string): void;
  changesMissed?(missed: number, exact: boolean): void;
}

/** What a cluster node needs from its coordinator. */
export interface ClusterHost extends EndpointHost {
  /** Creates the exactly-once table (a job, queued before any forwarded request). */
  prepare(): Promise<void>;
  /** Deletes request ids recorded before `before` (ms since the epoch). */
  prune(before: number): Promise<void>;
  /** Re-emits a change the primary committed, on this process's publisher. */
  publishRemote(change: WriteChange): void;
  /** Whether this process has a publisher to re-emit the primary's changes on (else none are sent to it). */
  wantsRemoteChanges(): boolean;
}

/**
 * @internal One process's membership of a cluster: takes the primary lock or forwards to its
 * holder; as a secondary keeps retrying the lock and the connection every `retryMs`, and promotes
 * itself when it gets the lock (running its waiting requests itself, with their request ids); as
 * the primary listens on the socket, serves forwarded requests through the coordinator, streams
 * changes, prunes the exactly-once table; steps down on stop (goodbye, socket closed, lock freed).
 */
export class ClusterNode {
  private role: ClusterRole | undefined;
  private roleChanges = 0;
  private readonly lock: PrimaryLock;
  private readonly transport: ClusterTransport;
  private link: PrimaryLink;
  private endpoint: PrimaryEndpoint | undefined;
  private server: FrameServer | undefined;
  private retry: NodeJS.Timeout | undefined;
  private pruning: NodeJS.Timeout | undefined;
  private ticking = false;
  /** Failed promotions so far, and when this process may try the lock again after the last one. */
  private failedPromotions = 0;
  private lockAgainAt = 0;
  /** A promotion under way (the requests table, then the socket). */
  private promoting: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly options: ResolvedClusterOptions,
    databasePath: string,
    private readonly maxFrameBytes: number,
    private readonly host: ClusterHost,
    private readonly observer: ClusterObserver,
  ) {
    this.lock = PrimaryLock.open(options.lockPath ?? primaryLockPath(databasePath));
    this.transport = new UnixSocketTransport({
      path: options.socketPath ?? defaultSocketPath(databasePath),
      maxFrameBytes,
    });
    this.link = this.newLink();
  }

  /** True once this process holds the lock and serves the socket (or is promoting itself). */
  get isPrimary(): boolean {
    return this.role === 'primary';
  }

  /** True once {@link start} decided a role (until then, during bootstrap, writes run locally). */
  get joined(): boolean {
    return this.role !== undefined;
  }

  /** Whether a change published now would reach a secondary. */
  get wantsChanges(): boolean {
    return this.endpoint?.wantsChanges ?? false;
  }

  /**
   * Takes the lock or joins as a secondary. As a secondary, one connection attempt is made now;
   * later ones run in the background.
   * @throws {InvalidOptionsError} for `role: 'primary'` when another process holds the lock, or
   *   when the socket cannot be created.
   */
  async start(): Promise<void> {
    let locked: boolean;
    try {
      locked = this.options.role !== 'secondary' && this.lock.tryAcquire(this);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new InvalidOptionsError(
        'cluster.lockPath',
        'a file this process can lock',
        this.lock.path,
        `Coordinator.attach(): ${message}`,
      );
    }
    if (locked) {
      await this.promote(true);
      return;
    }
    if (this.options.role === 'primary') {
      throw new InvalidOptionsError(
        'cluster.role',
        `'primary' with the primary lock free (another process holds ${this.lock.path})`,
        'primary',
        'Coordinator.attach()',
      );
    }
    this.setRole('secondary', undefined);
    await this.tick();
  }

  /**
   * Runs a forwardable write where the cluster says: on the primary, here (exactly once per
   * request id); on a secondary, on the primary.
   */
  forward(
    call: ForwardedCall,
    requestId: string,
    options: { deadline: number; signal?: AbortSignal; label?: string; meta?: RequestFrame['meta'] },
  ): Promise<unknown> {
    if (this.role === 'primary') return this.executeHere(call, requestId, options);
    return this.link.forward(call, requestId, options);
  }

  /** Streams a committed change to the secondaries (on the primary; a no-op elsewhere). */
  fanOut(change: WriteChange): void {
    this.endpoint?.publish(change);
  }

  /**
   * Leaves the cluster: a secondary waits (at most `graceMs`) for its forwarded requests, then
   * answers what is left with `SHUTDOWN`; the primary says goodbye, closes the socket and frees the
   * lock, so a secondary takes over at once.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.retry);
    await this.promoting?.catch(() => undefined); // a half-done promotion must not listen after the lock is freed
    clearInterval(this.pruning);
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([this.link.idle(), new Promise((resolve) => (grace = setTimeout(resolve, graceMs)))]);
    clearTimeout(grace);
    for (const entry of this.link.close()) {
      const error = new ShutdownError('this process stopped before the primary answered', { label: entry.label });
      entry.settle({ ok: false, error: unlessApplied(error, entry.maybeApplied) });
    }
    await this.endpoint?.goodbye(GOODBYE_FLUSH_MS);
    await this.server?.close();
    this.lock.release(this);
  }

  /** A snapshot for `metrics().cluster`. */
  metrics(): ClusterMetrics {
    const primary = this.role === 'primary';
    const counts = this.endpoint?.counts();
    const primaryPid = primary ? process.pid : this.link.primaryPid;
    return {
      role: primary ? 'primary' : 'secondary',
      pid: process.pid,
      ...(primaryPid === undefined || (!primary && !this.link.connected) ? {} : { primaryPid }),
      peers: primary ? (this.endpoint?.peerCount ?? 0) : this.link.connected ? 1 : 0,
      forwarded: primary ? (counts?.received ?? 0) : this.link.forwarded,
      resent: this.link.resent,
      forwardedInFlight: primary ? (counts?.running ?? 0) : this.link.inFlight,
      primaryResponsive: primary || this.link.responsive,
      changesMissed: this.link.changesMissed,
      withoutPrimaryMs: primary ? 0 : this.link.withoutPrimaryMs,
      address: this.transport.address,
      roleChanges: this.roleChanges,
    };
  }

  private newLink(): PrimaryLink {
    return new PrimaryLink(
      this.transport,
      {
        secret: this.options.secret,
        heartbeatMs: this.options.heartbeatMs,
        handshakeTimeoutMs: this.options.handshakeTimeoutMs,
        handlerNames: () => this.host.handlerNames(),
        wantsChanges: () => this.host.wantsRemoteChanges(),
      },
      {
        lost: (reason) => {
          this.observer.primaryLost?.(this.link.primaryPid, reason);
          void this.tick();
        },
        unresponsive: (pid) => this.observer.primaryLost?.(pid, 'unresponsive: no answer for three heartbeats'),
        missed: (count, exact) => this.observer.changesMissed?.(count, exact),
        change: (change) => this.host.publishRemote(change),
      },
      this.host.log,
    );
  }

  /** One round of a secondary without a primary: the lock first (auto), then the socket. */
  private async tick(): Promise<void> {
    clearTimeout(this.retry);
    if (this.stopped || this.role === 'primary' || this.ticking) return;
    this.ticking = true;
    try {
      if (this.options.role === 'auto' && performance.now() >= this.lockAgainAt && this.lock.tryAcquire(this)) {
        return await this.promote(false);
      }
      // (a channel can close again right after its handshake: then retry like any failure)
      if ((this.link.connected || (await this.link.connect())) && this.link.connected) return;
    } catch (error) {
      // It could not serve (e.g. the socket path became unusable): leave the lock to the others for
      // a while, longer after each failure, rather than take it back every retryMs.
      this.failedPromotions++;
      this.lockAgainAt = performance.now() + Math.min(5_000, this.options.retryMs * 2 ** this.failedPromotions);
      this.host.log.error('cluster: could not take over as the primary', error);
    } finally {
      this.ticking = false;
    }
    if (!this.stopped && !this.isPrimary && !this.link.connected) {
      this.retry = setTimeout(() => void this.tick(), this.options.retryMs);
      this.retry.unref?.();
    }
  }

  /** Becomes the primary; {@link stop} waits for a promotion under way before it frees the lock. */
  private async promote(first: boolean): Promise<void> {
    const promoting = (this.promoting = this.becomePrimary(first));
    try {
      await promoting;
    } finally {
      if (this.promoting === promoting) this.promoting = undefined;
    }
  }

  /** The table, then the waiting requests, then the socket (unless stopped meanwhile). */
  private async becomePrimary(first: boolean): Promise<void> {
    const prepared = this.host.prepare(); // queued first: every later job finds the table
    const previous = this.role;
    this.role = 'primary';
    this.link.noteAbandoned();
    for (const entry of this.link.close()) {
      this.executeHere(entry.call, entry.requestId, entry).then(
        (value) => entry.settle({ ok: true, value }),
        // Refused here before its lookup could tell (cancelled or expired in the queue, …), but
        // the dead primary may have applied it: the caller must not think it certainly was not.
        (error: unknown) => entry.settle({ ok: false, error: unlessApplied(error, entry.maybeApplied) }),
      );
    }
    this.endpoint = new PrimaryEndpoint(this.host, {
      secret: this.options.secret,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
      maxBacklogBytes: BACKLOG_FRAMES * this.maxFrameBytes,
    });
    try {
      await prepared;
      if (this.stopped) return; // stop() frees the lock once this returns: never listen after it
      const endpoint = this.endpoint;
      this.server = await this.transport.listen((channel) => endpoint.accept(channel));
      if (this.stopped) return; // stop() closes the server it now sees
    } catch (error) {
      // Cannot serve: give the lock back and go on as a secondary (or fail the bootstrap).
      this.endpoint = undefined;
      this.role = previous;
      this.lock.release(this);
      this.link = this.newLink();
      if (first) {
        throw new InvalidOptionsError(
          'cluster.socketPath',
          'a path where the primary can listen',
          this.transport.address,
          `Coordinator.attach(): ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      throw error;
    }
    this.pruning = setInterval(
      () =>
        void this.host
          .prune(Date.now() - this.options.dedupeWindowMs)
          .catch((e: unknown) => this.host.log.warn(`cluster: pruning request ids failed: ${String(e)}`)),
      this.options.pruneIntervalMs,
    );
    this.pruning.unref?.();
    this.setRole('primary', previous);
  }

  private executeHere(
    call: ForwardedCall,
    requestId: string,
    options: { deadline: number; signal?: AbortSignal; label?: string; meta?: RequestFrame['meta'] },
  ): Promise<unknown> {
    const timeoutMs = Math.max(1, Math.round(options.deadline - performance.now()));
    return this.host.execute(call, requestId, {
      timeoutMs,
      signal: options.signal ?? new AbortController().signal,
      label: options.label,
      meta: options.meta,
    });
  }

  private setRole(role: ClusterRole, previous: ClusterRole | undefined): void {
    this.role = role;
    this.roleChanges++;
    this.host.log.log(
      role === 'primary'
        ? `cluster: primary (pid ${process.pid}), listening on ${this.transport.address}`
        : `cluster: secondary (pid ${process.pid}), forwarding to ${this.transport.address}`,
    );
    this.observer.roleChanged?.(role, previous, role === 'primary' ? process.pid : this.link.primaryPid);
  }
}
