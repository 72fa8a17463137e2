import type { WriteChange } from '../changes/write-change';
import { InvalidOptionsError, NotPrimaryError, ShutdownError } from '../errors';
import { isStorageFailure, sqliteCode } from '../sqlite/sqlite-error';
import type { ResolvedClusterOptions } from './cluster.options';
import { LockElection } from './lock-election';
import type { PrimaryElection, ReplicationPosition } from './primary-election';
import { EndpointHost, PrimaryEndpoint } from './primary-endpoint';
import { PrimaryLink, unlessApplied } from './primary-link';
import type { ForwardedCall, RequestFrame } from './protocol';
import type { ClusterTransport, FrameServer } from './transport';

/** How long a stepping-down primary waits for its last answers and goodbyes to reach the secondaries. */
const GOODBYE_FLUSH_MS = 1_000;

/**
 * How long a write the database file refused (a storage error) waits, on a host that still thinks
 * it is the primary, for the election to say the primary moved (LiteFS takes the lease away before
 * its event arrives), to tell `NOT_PRIMARY` from a failing disk.
 */
const DEMOTION_GRACE_MS = 2_000;

/** How often the election is asked to look again meanwhile. */
const RECHECK_MS = 50;

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
  /** How the primary is found: `lock` (one host), `litefs` or `static` (several hosts). */
  strategy: 'lock' | 'litefs' | 'static';
  /** `litefs` / `static`: the primary's hostname, when known (absent on the primary itself). */
  primaryHost?: string;
  /** `litefs`: this node's replication position and lag (see {@link ReplicationMetrics}). */
  replication?: ReplicationMetrics;
}

/** `metrics().cluster.replication` (LiteFS): where this node's copy of the database stands. */
export interface ReplicationMetrics {
  /** This node's TXID (LiteFS's `<db>-pos`), when readable. */
  position?: number;
  /** On a replica: the primary's TXID, as last reported by it (heartbeats and answers). */
  primaryPosition?: number;
  /** On a replica: TXIDs behind the primary's last reported position (0 when caught up). */
  behind: number;
  /** On a replica: ms since it was last seen caught up with the primary (0 while caught up, and on the primary). */
  lagMs: number;
  /** Ms since this node's position last advanced (a transaction applied or committed here). */
  sinceLastTxMs: number;
}

/** @internal How a cluster node finds its primary, reaches it, and reads its replication position. */
export interface ClusterParts {
  readonly election: PrimaryElection;
  readonly transport: ClusterTransport;
  /** LiteFS only: read-your-writes and the lag in health. */
  readonly position?: ReplicationPosition;
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
  private readonly election: PrimaryElection;
  private readonly transport: ClusterTransport;
  private readonly position: ReplicationPosition | undefined;
  private link: PrimaryLink;
  /** The primary hostname the link was connected towards (litefs, static), to notice a move. */
  private linkHost: string | undefined;
  /**
   * On a replica: positions the primary reported (ascending) with when, that this replica had not
   * reached yet; the oldest one's age is the lag.
   */
  private unreached: Array<{ txid: number; at: number }> = [];
  private endpoint: PrimaryEndpoint | undefined;
  private server: FrameServer | undefined;
  private retry: NodeJS.Timeout | undefined;
  private pruning: NodeJS.Timeout | undefined;
  private ticking = false;
  /** Failed promotions so far, and when this process may try the lock again after the last one. */
  private failedPromotions = 0;
  private lockAgainAt = 0;
  /** A promotion (the requests table, then the socket) or a step-down under way. */
  private promoting: Promise<void> | undefined;
  /** Woken at the next view change or role change. */
  private changeWaiters: Array<() => void> = [];
  private stopped = false;

  constructor(
    private readonly options: ResolvedClusterOptions,
    parts: ClusterParts,
    private readonly maxFrameBytes: number,
    private readonly host: ClusterHost,
    private readonly observer: ClusterObserver,
  ) {
    this.election = parts.election;
    this.transport = parts.transport;
    this.position = parts.position;
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

  /** Whether this node's database file takes writes only while it is the primary (litefs, static). */
  get writesNeedPrimary(): boolean {
    return this.election.writesNeedPrimary;
  }

  /**
   * Why a local write (`run()`, a transparent write) may not run here now, or undefined when it
   * may: on a host whose database file takes writes only as the primary (litefs, static), once
   * the cluster is joined, while this node is not the primary.
   */
  localWriteRefusal(context: { jobId?: string; label?: string } = {}): NotPrimaryError | undefined {
    return this.refusesLocalWrites ? new NotPrimaryError(this.primaryHost(), context) : undefined;
  }

  /**
   * Whether a local write must not run here now: on a host whose file takes writes only as the
   * primary, once it joined as a secondary, or, before it joined (a provider writing in
   * `onModuleInit`), when the election already names another host (`static`: from the
   * configuration; LiteFS is not heard before the start, so its file's refusal decides then).
   */
  get refusesLocalWrites(): boolean {
    if (!this.election.writesNeedPrimary || this.role === 'primary') return false;
    return this.role === 'secondary' || this.election.view().kind === 'replica';
  }

  /**
   * A local write's failure as the caller should see it: a storage error (`SQLITE_READONLY`,
   * LiteFS's "disk I/O error") on a host that is not the primary (the primary moved away under the
   * write) becomes `NOT_PRIMARY`, with the driver's error as its cause; anything else unchanged.
   * A host that still thinks it is the primary waits a moment for the election to catch up first.
   */
  async explainFailure(error: unknown, context: { jobId?: string; label?: string } = {}): Promise<unknown> {
    if (!this.election.writesNeedPrimary || error instanceof NotPrimaryError) return error;
    if (!isStorageFailure(sqliteCode(error))) return error;
    const deadline = performance.now() + DEMOTION_GRACE_MS;
    while (this.election.view().kind === 'primary' && performance.now() < deadline) {
      this.election.recheck?.(); // LiteFS with its stream down: read .primary again, every RECHECK_MS
      await this.nextChange(Math.min(deadline, performance.now() + RECHECK_MS));
    }
    if (this.election.view().kind === 'primary') return error;
    return new NotPrimaryError(this.primaryHost(), { ...context, cause: error });
  }

  /** Resolves at the next view or role change, or at `deadline` (`performance.now()` time). */
  private nextChange(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, deadline - performance.now()));
      this.changeWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private wakeChangeWaiters(): void {
    for (const wake of this.changeWaiters.splice(0)) wake();
  }

  /** LiteFS: this node's replication position now; undefined without one. */
  replicationPosition(): number | undefined {
    return this.position?.current();
  }

  /** LiteFS: true once this node's position reaches `txid` (false after `timeoutMs`); true without a position. */
  waitForPosition(txid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.position ? this.position.waitFor(txid, timeoutMs, signal) : Promise.resolve(true);
  }

  /** The primary's hostname when another host is the primary and it is known. */
  primaryHost(): string | undefined {
    const view = this.election.view();
    return view.kind === 'replica' ? view.primary : undefined;
  }

  /**
   * Finds the primary (the `lock` strategy: takes the lock) or joins as a secondary. As a
   * secondary, one connection attempt is made now; later ones run in the background.
   * @throws {InvalidOptionsError} for `role: 'primary'` when another process holds the lock, or
   *   when the endpoint cannot be created.
   */
  async start(): Promise<void> {
    await this.election.start(() => this.onViewChange(), this.options.handshakeTimeoutMs);
    let claimed: boolean;
    try {
      claimed = this.options.role !== 'secondary' && this.election.claim();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new InvalidOptionsError(
        'cluster.lockPath',
        'a file this process can lock',
        this.lockPath(),
        `Coordinator.attach(): ${message}`,
      );
    }
    if (claimed) {
      await this.promote(true);
      return;
    }
    if (this.options.role === 'primary') {
      throw new InvalidOptionsError(
        'cluster.role',
        `'primary' with the primary lock free (another process holds ${this.lockPath()})`,
        'primary',
        'Coordinator.attach()',
      );
    }
    this.setRole('secondary', undefined);
    await this.tick();
  }

  /**
   * Runs a forwardable write where the cluster says: on the primary, here (exactly once per
   * request id); on a secondary, on the primary. A write refused here because this host stopped
   * being the primary under it (`NOT_PRIMARY`: certainly not written) goes to the new primary.
   */
  forward(
    call: ForwardedCall,
    requestId: string,
    options: { deadline: number; signal?: AbortSignal; label?: string; meta?: RequestFrame['meta'] },
  ): Promise<unknown> {
    if (this.role !== 'primary') return this.link.forward(call, requestId, options);
    return this.executeHere(call, requestId, options).catch(async (error: unknown) => {
      if (!(error instanceof NotPrimaryError) || this.stopped) throw error;
      // The file refused it: this host is stepping down. Once it has, the new primary runs it.
      while (this.role === 'primary' && !this.stopped && performance.now() < options.deadline) {
        await this.nextChange(options.deadline);
      }
      if (this.role === 'primary' || this.stopped) throw error;
      return this.link.forward(call, requestId, options);
    });
  }

  /** Streams a committed change to the secondaries (on the primary; a no-op elsewhere). */
  fanOut(change: WriteChange): void {
    this.endpoint?.publish(change);
  }

  /**
   * Leaves the cluster: a secondary waits (at most `graceMs`) for its forwarded requests, then
   * answers what is left with `SHUTDOWN`; the primary says goodbye, closes its endpoint and frees
   * the lock, so a secondary takes over at once.
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
    this.election.release();
    this.election.stop();
    this.position?.stop();
  }

  /** A snapshot for `metrics().cluster`. */
  metrics(): ClusterMetrics {
    const primary = this.role === 'primary';
    const counts = this.endpoint?.counts();
    const primaryPid = primary ? process.pid : this.link.primaryPid;
    const primaryHost = primary ? undefined : this.primaryHost();
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
      strategy: this.election.strategy,
      ...(primaryHost === undefined ? {} : { primaryHost }),
      ...(this.position ? { replication: this.replication(primary) } : {}),
    };
  }

  /** The replication part of {@link metrics}: this node's position, and on a replica its lag. */
  private replication(primary: boolean): ReplicationMetrics {
    const now = performance.now();
    const position = this.position!.current();
    const primaryPosition = primary ? undefined : this.link.primaryPosition;
    const behind =
      position === undefined || primaryPosition === undefined ? 0 : Math.max(0, primaryPosition - position);
    if (primary) this.unreached = [];
    const reached = this.unreached.findIndex((report) => position === undefined || report.txid > position);
    this.unreached.splice(0, reached === -1 ? this.unreached.length : reached);
    return {
      ...(position === undefined ? {} : { position }),
      ...(primaryPosition === undefined ? {} : { primaryPosition }),
      behind,
      lagMs: this.unreached.length === 0 ? 0 : Math.round(now - this.unreached[0].at),
      sinceLastTxMs: Math.round(now - this.position!.lastAdvanceAt),
    };
  }

  /** A position the primary reported: kept (bounded) until this replica reaches it, for the lag. */
  private noteUnreached(txid: number): void {
    if (!this.position) return;
    const position = this.position.current();
    if (position !== undefined && position >= txid) return;
    if (this.unreached.length >= 1_024) this.unreached.splice(1, 1); // keep the oldest: it is the lag
    this.unreached.push({ txid, at: performance.now() });
  }

  private newLink(): PrimaryLink {
    const position = this.position;
    const waitMs = this.options.readYourWritesMs;
    return new PrimaryLink(
      this.transport,
      {
        secret: this.options.secret,
        heartbeatMs: this.options.heartbeatMs,
        handshakeTimeoutMs: this.options.handshakeTimeoutMs,
        handlerNames: () => this.host.handlerNames(),
        wantsChanges: () => this.host.wantsRemoteChanges(),
        readYourWrites: position && waitMs !== false ? { position, timeoutMs: waitMs } : undefined,
      },
      {
        lost: (reason) => {
          this.observer.primaryLost?.(this.link.primaryPid, reason);
          void this.tick();
        },
        unresponsive: (pid) => this.observer.primaryLost?.(pid, 'unresponsive: no answer for three heartbeats'),
        missed: (count, exact) => this.observer.changesMissed?.(count, exact),
        change: (change) => this.host.publishRemote(change),
        primaryPosition: (txid) => this.noteUnreached(txid),
        newPrimary: () => (this.unreached = []),
      },
      this.host.log,
    );
  }

  /**
   * The election's view changed (LiteFS: an `init` or `primaryChange` event, `.primary` appearing
   * or going). A primary that may no longer claim the role steps down; a secondary connected
   * towards a host that is no longer the primary drops that connection and looks again.
   */
  private onViewChange(): void {
    this.wakeChangeWaiters();
    if (this.stopped || this.role === undefined) return;
    if (this.promoting) {
      void this.promoting.then(
        () => this.onViewChange(),
        () => undefined,
      );
      return;
    }
    if (this.role === 'primary') {
      if (!this.election.claim()) this.promoting = this.stepDown().finally(() => (this.promoting = undefined));
      return;
    }
    const view = this.election.view();
    const host = this.primaryHost();
    if (this.link.connected && host !== this.linkHost) {
      this.link.dropChannel(
        view.kind === 'primary' ? 'this host is the primary now' : `the primary is now ${host ?? 'unknown'}`,
      );
    }
    void this.tick();
  }

  /** One round of a secondary without a primary: the role first (auto), then the connection. */
  private async tick(): Promise<void> {
    clearTimeout(this.retry);
    if (this.stopped || this.role === 'primary' || this.ticking) return;
    this.ticking = true;
    try {
      if (this.options.role === 'auto' && performance.now() >= this.lockAgainAt && this.election.claim()) {
        return await this.promote(false);
      }
      this.linkHost = this.primaryHost();
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
    // The view may have moved on while this node was promoting itself (LiteFS: the lease lost again).
    if (!first && this.role === 'primary' && !this.stopped && !this.election.claim()) this.onViewChange();
  }

  /** The table, then the waiting requests, then the endpoint (unless stopped meanwhile). */
  private async becomePrimary(first: boolean): Promise<void> {
    const previous = this.role;
    this.role = 'primary'; // (before any job: on several hosts a secondary's local jobs are refused)
    const prepared = this.host.prepare(); // queued first: every later job finds the table
    this.link.noteAbandoned();
    for (const entry of this.link.close()) {
      this.executeHere(entry.call, entry.requestId, entry).then(
        (value) => entry.settle({ ok: true, value }),
        // Refused here before its lookup could tell (cancelled or expired in the queue, …), but
        // the dead primary may have applied it: the caller must not think it certainly was not.
        (error: unknown) => entry.settle({ ok: false, error: unlessApplied(error, entry.maybeApplied) }),
      );
    }
    this.endpoint = this.newEndpoint();
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
      this.election.release();
      this.link = this.newLink();
      if (first) {
        throw new InvalidOptionsError(
          this.election.strategy === 'lock' ? 'cluster.socketPath' : 'cluster.http',
          'an address where the primary can listen',
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

  /**
   * This host may no longer write (LiteFS moved the primary elsewhere): stop serving (goodbye: the
   * secondaries reconnect to the new primary and resend what this one had not answered, with
   * the same request ids), and go on as a secondary. Writes still queued here fail with
   * `NOT_PRIMARY` (the database file refuses them); forwarded ones follow the primary.
   */
  private async stepDown(): Promise<void> {
    const endpoint = this.endpoint;
    const server = this.server;
    clearInterval(this.pruning);
    this.endpoint = undefined;
    this.server = undefined;
    this.election.release();
    this.link = this.newLink();
    this.setRole('secondary', 'primary');
    await endpoint?.goodbye(GOODBYE_FLUSH_MS);
    await server?.close();
    void this.tick();
  }

  private newEndpoint(): PrimaryEndpoint {
    const position = this.position;
    return new PrimaryEndpoint(this.host, {
      secret: this.options.secret,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
      maxBacklogBytes: BACKLOG_FRAMES * this.maxFrameBytes,
      position: position && (() => position.current()),
    });
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

  /** The lock file (the `lock` strategy), for errors. */
  private lockPath(): string {
    return this.election instanceof LockElection ? this.election.lock.path : this.election.strategy;
  }

  private setRole(role: ClusterRole, previous: ClusterRole | undefined): void {
    this.role = role;
    this.roleChanges++;
    this.wakeChangeWaiters();
    const where = this.election.strategy === 'lock' ? this.transport.address : (this.primaryHost() ?? 'the primary');
    this.host.log.log(
      role === 'primary'
        ? `cluster: primary (pid ${process.pid}), listening on ${this.transport.address}`
        : `cluster: secondary (pid ${process.pid}), forwarding to ${where}`,
    );
    this.observer.roleChanged?.(role, previous, role === 'primary' ? process.pid : this.link.primaryPid);
  }
}
