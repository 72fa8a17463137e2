import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { DataSource, EntityManager } from 'typeorm';
import { ClusterMetrics, ClusterNode, ClusterObserver } from '../cluster/cluster-node';
import { clusterParts } from '../cluster/cluster-parts';
import { ForwardableFn, ForwardedWrites } from '../cluster/forwarded-writes';
import { maxFrameBytesFor } from '../cluster/frame-codec';
import type { ForwardedCall } from '../cluster/protocol';
import type { ChangePublisher, WriteChange, WriteRequestMeta } from '../changes/write-change';
import { topicOf } from '../changes/change-topics';
import {
  CoordinatorNotReadyError,
  InvalidOptionsError,
  InvalidParamsError,
  NotPrimaryError,
  WriteCoordinatorError,
} from '../errors';
import type {
  EnqueueOptions,
  JobContext,
  JobInfo,
  QueueMetrics,
  WriteQueueObserver,
  WriteQueueState,
} from '../queue/queue.types';
import { WriteQueue } from '../queue/write-queue';
import { StorageHealth, StorageStatus } from '../sqlite/storage-health';
import { noWalMetrics, WalCheckpointPolicy, WalMetrics } from '../sqlite/wal-checkpoint';
import { WriteHandlerFn, WriteHandlerRegistry } from '../submit/write-handler.registry';
import { requestProblem } from '../submit/write-request.validation';
import { TransactionScope } from '../transaction/transaction-scope';
import type { WriteJob, WriteWork } from '../transaction/write-job';
import type { WriterConnection } from '../transaction/writer-connection';
import { attachToDataSource, DataSourceAttachment } from '../typeorm/data-source-attachment';
import { BatchMetrics, BatchStats } from './batch-stats';
import {
  OPTION_CHECKS,
  resolveWriteCoordinatorOptions,
  ResolvedWriteCoordinatorOptions,
  validateCallOptions,
  WriteCoordinatorOptions,
} from './coordinator-options';
import { settlesWithin } from './settles-within';
import { combineObservers, CoordinatorObserver, isTrustedInstrumentation, reportCommit } from './instrumentation';

/** Per-call options of `run()`, `submit()` and decorated methods. */
export interface WriteOptions {
  /** Aborting it cancels the job: removed if waiting, rolled back if running (`CANCELLED`). */
  signal?: AbortSignal;
  /** Deadline in ms from submission (`TIMEOUT`); overrides the module's `timeoutMs`. */
  timeoutMs?: number;
  /** Label carried in events, errors and metrics. */
  label?: string;
}

/** The serialisable form of a write, as it could cross a process boundary. */
export interface WriteRequest {
  /** Name of a method registered with `@WriteHandler`. */
  method: string;
  /** The handler's input; must survive a JSON round trip to cross processes. */
  params?: unknown;
  /** Who sent it and when. */
  meta?: WriteRequestMeta;
}

/**
 * A consistent snapshot of a coordinator. The counters balance:
 * `accepted = completed + failed + cancelled + timedOut + dropped + queueDepth + running`.
 */
export interface CoordinatorMetrics extends QueueMetrics {
  /** Name of the coordinator. */
  coordinator: string;
  /** Whether the database is taking writes (down from a disk-full or I/O failure until a commit). */
  storage: StorageStatus;
  /** Committed transactions and how many jobs each carried (group commit, `maxBatchSize`). */
  batches: BatchMetrics;
  /** The `-wal` file's size and the coordinator's checkpoints (`walCheckpoint` option). */
  wal: WalMetrics;
  /**
   * This process's place in its cluster (`cluster` option): role, primary, peers, forwarded
   * requests. Absent without the option. The queue counters above count this process's own jobs
   * (on the primary, forwarded requests included; on a secondary, its local `run()` jobs only).
   */
  cluster?: ClusterMetrics;
}

/** Where a {@link Coordinator} reports what needs a human: the Nest face passes its `Logger`. */
export interface CoordinatorLog {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
}

/** Plain callbacks a host gives a {@link Coordinator}; every one is optional. */
export interface CoordinatorHooks {
  /** Told of every job's lifecycle (accepted, started, completed, failed, rejected, …) and commit. */
  events?: CoordinatorObserver;
  /** Publishes changes after commit when the options give no `publisher`. */
  publisher?: ChangePublisher;
  /** Warnings and errors. @default the console, prefixed with the coordinator's name */
  log?: CoordinatorLog;
  /** Told of role changes, a lost primary and missed changes (`cluster` option). */
  cluster?: ClusterObserver;
}

/** How long a running job may overrun the grace at shutdown before its caller gets `SHUTDOWN`. */
const OVERRUN_MS = 1_000;

/**
 * The write coordinator without Nest: serialises every write of one TypeORM DataSource through a
 * single drain, each job alone in its own transaction (or a group-commit batch), in submission
 * order. `WriteCoordinatorModule` provides it as the injectable `WriteCoordinator`; a plain Node
 * script or worker uses it directly.
 *
 * @example
 * const coordinator = new Coordinator({ synchronous: 'FULL' });
 * await coordinator.attach(dataSource); // an initialised better-sqlite3 DataSource
 * await coordinator.run((manager) => manager.insert(Event, { kind: 'started' }));
 * await coordinator.close(); // drain, stop, give the DataSource back
 */
export class Coordinator {
  /** The validated options. */
  protected readonly options: ResolvedWriteCoordinatorOptions;
  /** Where warnings and errors go. */
  protected readonly log: CoordinatorLog;
  private readonly queue: WriteQueue;
  private readonly scope: TransactionScope;
  private readonly handlers = new WriteHandlerRegistry();
  private readonly storage = new StorageHealth();
  private readonly batches = new BatchStats();
  private readonly publisher: ChangePublisher | undefined;
  /** Set by {@link attach}; until then every call fails with `COORDINATOR_NOT_READY`. */
  private attachment: DataSourceAttachment | undefined;
  /** Set by {@link attach}: checkpoints after commits, when idle, and between jobs past the WAL limit. */
  private wal: WalCheckpointPolicy | undefined;
  /** The `cluster` option's machinery: forwarded writes run here exactly once, and this process's membership. */
  private readonly forwarded: ForwardedWrites;
  private readonly clusterObserver: ClusterObserver;
  /** Set by {@link attach} with the `cluster` option. */
  private cluster: ClusterNode | undefined;
  /** True once the cluster was joined: the handler names were announced. */
  private clusterJoined = false;

  /**
   * Options the Nest face reads and a plain coordinator ignores: `dataSource` (give it to
   * {@link attach}), `isGlobal`, `readinessDelayMs`, `gracefulHttpShutdown`.
   *
   * @throws {InvalidOptionsError} for invalid options, naming the field, the expected and the received value.
   */
  constructor(
    options: WriteCoordinatorOptions = {},
    hooks: CoordinatorHooks = {},
    /** @internal The Nest face's own event bridge, trusted with the queue's job records. */
    queueObserver?: WriteQueueObserver,
  ) {
    this.options = resolveWriteCoordinatorOptions(options, 'Coordinator');
    this.log = hooks.log ?? consoleLog(this.options.name);
    const observer = combineObservers([
      queueObserver ?? (hooks.events && observerOf(hooks.events)),
      ...this.options.instrumentation.map((instrumentation) =>
        isTrustedInstrumentation(instrumentation)
          ? instrumentation.instrument(this)
          : observerOf(instrumentation.instrument(this)),
      ),
    ]);
    this.queue = new WriteQueue(
      { capacity: this.options.queueSize, whenFull: this.options.whenFull, timeoutMs: this.options.timeoutMs },
      observer,
    );
    this.scope = new TransactionScope(
      {
        afterCommitError: (error) => this.log.error('after-commit publisher failed', error),
        committed: (size, commitMs) => {
          this.storage.committed();
          this.batches.record(size);
          this.wal?.committed();
          reportCommit(observer, size, commitMs);
        },
        // Several hosts: counted once explained (a replica's file refusing a write is no failing disk).
        failed: (error) => this.cluster?.writesNeedPrimary || this.storage.failed(error),
      },
      {
        maxSize: this.options.maxBatchSize,
        waitMs: this.options.batchWaitMs,
        yieldMode: this.options.batchYield,
        take: () => this.queue.takeNext(),
        whenArrival: (ms) => this.queue.whenArrival(ms),
      },
    );
    this.publisher = this.options.publisher ?? hooks.publisher;
    this.clusterObserver = hooks.cluster ?? {};
    this.forwarded = new ForwardedWrites({
      log: this.log,
      maxPayloadBytes: this.options.maxPayloadBytes,
      requestsTable: this.options.cluster?.requestsTable ?? '_write_coordinator_requests',
      handlers: this.handlers,
      run: (work, options) => this.run(work, options),
      refuse: (label, makeError) => this.queue.refuse(label, makeError),
      invokeHandler: (method, params, meta, manager, job) => this.invokeHandler(method, params, meta, manager, job),
      publish: (change) => this.publish(change),
      hasPublisher: () => this.publisher !== undefined,
    });
  }

  /** Name of this coordinator. */
  get name(): string {
    return this.options.name;
  }

  /** `running` (accepting), `draining` (finishing queued work) or `stopped`. */
  get state(): WriteQueueState {
    return this.queue.state;
  }

  /** True once a DataSource is attached and until the coordinator stops. */
  get isReady(): boolean {
    return this.attachment !== undefined && this.queue.state === 'running';
  }

  /** The DataSource whose writes this coordinator serialises (undefined before {@link attach}). */
  get dataSource(): DataSource | undefined {
    return this.attachment?.dataSource;
  }

  /**
   * Takes over an initialised better-sqlite3 DataSource: applies and verifies the PRAGMAs, opens
   * the read connection, routes every write path of it through this coordinator. From now on the
   * coordinator accepts work.
   *
   * @throws {InvalidOptionsError} for a DataSource that is not better-sqlite3, already has a
   *   coordinator, has a transaction open, or refuses a PRAGMA; or when this coordinator is
   *   already attached.
   */
  async attach(dataSource: DataSource): Promise<void> {
    this.attachNow(dataSource);
    try {
      await this.startCluster();
    } catch (error) {
      // Could not join the cluster (e.g. role 'primary' while another process holds the lock):
      // give the DataSource back untouched, as if attach() had never been called.
      await this.cluster?.stop(0).catch(() => undefined); // its watchers (LiteFS's event stream) too
      this.release();
      this.attachment = undefined;
      this.cluster = undefined;
      this.clusterJoined = false;
      throw error;
    }
  }

  /**
   * Runs `work` on the single drain, inside one transaction: commits when it returns, rolls back
   * when it throws and rejects with the same error object. Called from inside a running job of
   * this coordinator, it runs inline in a savepoint instead of queueing behind itself; it then
   * shares the enclosing job's id, signal and deadline (its own `signal`/`timeoutMs` do not apply).
   *
   * @returns what `work` returned, once committed.
   * @throws {WriteCoordinatorError} `QUEUE_FULL`, `CANCELLED`, `TIMEOUT`, `DRAINING`, `SHUTDOWN`,
   *   `COORDINATOR_NOT_READY`, `BUSY` or `INTERNAL` (BEGIN/COMMIT failures); anything `work` throws.
   * @example
   * const id = await coordinator.run(async (manager) => {
   *   const account = await manager.save(Account, { name: 'alice', balance: 100 });
   *   return account.id;
   * }, { label: 'open account', timeoutMs: 2_000 });
   */
  run<T>(work: WriteWork<T>, options: WriteOptions = {}): Promise<T> {
    const invalid = this.refuseInvalid<T>(options, 'WriteCoordinator.run()');
    if (invalid) return invalid;
    return (
      this.scope.runInline(work) ??
      this.enqueue({ ...options, batchable: true }, (ctx, writer) => this.scope.runJob(writer, ctx, work))
    );
  }

  /**
   * Runs the handler registered for `request.method` (`@WriteHandler`, or {@link handle}), exactly
   * like {@link run}, and resolves with a JSON copy of its result. After commit the change
   * publisher is told.
   *
   * A malformed request, or params the handler's `validate` refuses, are refused before queueing
   * (`INVALID_PARAMS`, counted as rejected, `JobRejected`); an unknown method is accepted and then
   * fails (`METHOD_NOT_FOUND`, as in the seed).
   *
   * @throws {WriteCoordinatorError} `METHOD_NOT_FOUND`, `INVALID_PARAMS`, `CONFLICT`, `BUSY`,
   *   `INTERNAL`, and the queue's codes as for {@link run}. Every failure is a coded error.
   */
  submit(request: WriteRequest, options: WriteOptions = {}): Promise<unknown> {
    const problem = requestProblem(request, this.options.maxPayloadBytes);
    if (problem !== undefined) {
      return this.queue.refuse(labelOf(options), (job) => new InvalidParamsError(problem, job));
    }
    const { method, params, meta } = request;
    const refused = this.handlers.refusal(method, params);
    if (refused !== undefined) {
      const { detail, cause } = refused;
      return this.queue.refuse(labelOf(options) ?? method, (job) => new InvalidParamsError(detail, { ...job, cause }));
    }
    const label = options.label ?? method;
    // Before the cluster is joined (a provider writing in onModuleInit), writes run here, as run().
    const cluster = this.cluster?.joined && !this.scope.isInside ? this.cluster : undefined;
    // A secondary forwards; the primary takes the exactly-once path for a request with an id.
    const forwards = cluster && (!cluster.isPrimary || meta?.requestId !== undefined);
    // Several hosts: the primary may move away under a local run; then the request goes to the new one.
    const mayFollow = cluster?.writesNeedPrimary && !forwards;
    // A JSON snapshot of the params: a resend after a failover carries exactly what was asked, whatever
    // the caller (or a handler run here) does with the object meanwhile.
    const call: ForwardedCall | undefined =
      forwards || mayFollow
        ? {
            op: 'submit',
            method,
            ...(params === undefined ? {} : { params: JSON.parse(JSON.stringify(params)) as unknown }),
          }
        : undefined;
    if (forwards) return this.forward(call!, meta, { ...options, label });
    const local = this.run((manager, job) => this.invokeHandler(method, params, meta, manager, job), {
      ...options,
      label,
    });
    return mayFollow ? this.followPrimary(local, call!, meta, { ...options, label }) : local;
  }

  /**
   * Several hosts: `local`, a forwardable write this host ran as the primary, unless its file
   * refused it because the primary moved away meanwhile (`NOT_PRIMARY`: nothing was written):
   * then `call` goes to the new primary.
   */
  private followPrimary(
    local: Promise<unknown>,
    call: ForwardedCall,
    meta: WriteRequest['meta'],
    options: WriteOptions,
  ): Promise<unknown> {
    return local.catch((error: unknown) => {
      if (!(error instanceof NotPrimaryError)) throw error;
      return this.forward(call, meta, options);
    });
  }

  /**
   * @internal What `@SerializedWrite({ forward: true })` calls: on a secondary of a cluster, outside
   * any job, `args` go to the primary, which runs the method registered under `name` (exactly once
   * per request id); everywhere else `local` runs as one job, like `run()`.
   */
  callForwardable(name: string, args: unknown[], local: () => unknown, options: WriteOptions): Promise<unknown> {
    // Not registered here (a request-scoped provider): not on the primary either, so it runs here.
    const cluster = this.cluster?.joined && !this.scope.isInside && this.forwarded.has(name) ? this.cluster : undefined;
    // On the primary it runs here; on several hosts it may have to follow a primary that moves away.
    if (!cluster || (cluster.isPrimary && !cluster.writesNeedPrimary)) return this.run(local, options);
    let json: unknown[];
    try {
      // A snapshot: a resend after a failover must carry the same arguments, whatever the caller
      // (or a run here) does with its objects meanwhile (another fingerprint would be refused as a reused id).
      json = JSON.parse(JSON.stringify(args)) as unknown[];
    } catch (error) {
      if (cluster.isPrimary) return this.run(local, options); // it runs here; it just could not follow
      const detail = `the arguments of '${name}' cannot be sent to the primary as JSON (${String(error)})`;
      return this.queue.refuse(options.label, (job) => new InvalidParamsError(detail, { ...job, cause: error }));
    }
    const call: ForwardedCall = { op: 'call', name, args: json };
    if (!cluster.isPrimary) return this.forward(call, undefined, options);
    return this.followPrimary(this.run(local, options), call, undefined, options);
  }

  /** @internal Registers a `@SerializedWrite({ forward: true })` method; called by the explorer at bootstrap. */
  registerForwardable(name: string, fn: ForwardableFn, origin: string): void {
    this.forwarded.register(name, fn, origin);
  }

  /**
   * Registers the handler of `submit({ method })` (what `@WriteHandler` does for Nest providers):
   * `fn(params, manager)` runs inside the job's transaction.
   *
   * @throws {InvalidOptionsError} when `method` already has a handler on this coordinator.
   */
  handle(method: string, fn: WriteHandlerFn, options: { validate?: (params: unknown) => boolean } = {}): void {
    const context = 'Coordinator.handle()';
    if (typeof method !== 'string' || method === '') {
      throw new InvalidOptionsError('method', 'a non-empty string', method, context);
    }
    if (typeof fn !== 'function') throw new InvalidOptionsError('fn', 'a function', fn, context);
    if (options.validate !== undefined && typeof options.validate !== 'function') {
      throw new InvalidOptionsError('validate', 'a function', options.validate, context);
    }
    if (this.clusterJoined) {
      // Handler names are part of the cluster handshake: a late one would differ between processes.
      throw new InvalidOptionsError('method', `registered before attach() (the cluster option is on)`, method, context);
    }
    this.handlers.register(method, fn, `Coordinator.handle('${method}')`, options.validate);
  }

  /**
   * Where a write issued on this host runs now. `here: true` without the `cluster` option, with
   * the `lock` strategy (every process of the host writes the shared file), and on the primary
   * host; `here: false` on the other hosts of the `litefs` and `static` strategies, with the
   * primary's hostname when known. What the HTTP forwarding interceptor asks on every request.
   */
  writeTarget(): WriteTarget {
    const cluster = this.cluster;
    if (!cluster?.refusesLocalWrites) return { here: true };
    const primary = cluster.primaryHost();
    return primary === undefined ? { here: false } : { here: false, primary };
  }

  /**
   * LiteFS: this host's replication position now (its TXID in `<db>-pos`); undefined without the
   * `litefs` strategy or while the file cannot be read.
   */
  replicationPosition(): number | undefined {
    return this.cluster?.replicationPosition();
  }

  /**
   * LiteFS: resolves true once this host's position reaches `txid` (at once when it has), false
   * after `timeoutMs` or when `signal` aborts; true at once without the `litefs` strategy (one file:
   * nothing to wait for). What read-your-writes waits on.
   */
  waitForPosition(txid: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.cluster?.waitForPosition(txid, timeoutMs, signal) ?? Promise.resolve(true);
  }

  /** A consistent snapshot of counters, gauges and recent latencies. */
  metrics(): CoordinatorMetrics {
    return {
      coordinator: this.name,
      ...this.queue.metrics(),
      storage: this.storage.status(),
      batches: this.batches.snapshot(),
      wal: this.wal?.metrics() ?? noWalMetrics(this.options.walCheckpoint),
      ...(this.cluster ? { cluster: this.cluster.metrics() } : {}),
    };
  }

  /** Resolves the next time nothing is queued or running. */
  onIdle(): Promise<void> {
    return this.queue.onIdle();
  }

  /**
   * Graceful stop: new work is refused with `DRAINING`, every queued job still runs; resolves once
   * the queue is empty, after which the coordinator is `stopped` (later calls get `SHUTDOWN`).
   */
  drain(): Promise<void> {
    return this.queue.drain();
  }

  /**
   * Hard stop: new work is refused with `SHUTDOWN`, every queued job is rejected with `SHUTDOWN`
   * (never runs), the running job finishes; resolves when the drain loop has stopped.
   */
  shutdown(): Promise<void> {
    return this.queue.shutdown();
  }

  /**
   * Ends the coordinator: drains for at most `graceMs`, then shuts down (what is still queued gets
   * `SHUTDOWN`; a running job that overruns by more than 1 s has its caller answered with
   * `SHUTDOWN` and is never committed), then gives the DataSource back to plain TypeORM. A job
   * abandoned that way may still hold its transaction: the DataSource is given back only once its
   * work settled, and until then its writes are refused with `SHUTDOWN` (never run inside the
   * abandoned transaction, to be rolled back with it).
   *
   * @param graceMs how long the drain may take. @default the `shutdownGraceMs` option
   * @throws {InvalidOptionsError} for a `graceMs` that is not a number of ms from 0 to 2^31 − 1.
   */
  async close(graceMs: number = this.options.shutdownGraceMs): Promise<void> {
    const expected = OPTION_CHECKS.nonNegativeFinite(graceMs);
    if (expected) throw new InvalidOptionsError('graceMs', expected, graceMs, 'Coordinator.close()');
    await this.stop(graceMs, 'graceMs');
    void this.queue.onIdle().then(() => this.release());
  }

  /** @internal Registers a `@WriteHandler`; called by the explorer at bootstrap. */
  registerHandler(...args: Parameters<WriteHandlerRegistry['register']>): void {
    this.handlers.register(...args);
  }

  /** Attaches at once (the Nest face does it in its synchronous `onModuleInit`). */
  protected attachNow(dataSource: DataSource): void {
    if (this.attachment) {
      throw new InvalidOptionsError(
        'dataSource',
        'one attach() per coordinator',
        this.attachment.dataSource === dataSource
          ? `the DataSource coordinator '${this.name}' is already attached to`
          : `a second DataSource for coordinator '${this.name}'`,
        'Coordinator.attach()',
      );
    }
    // The cluster first: a bad lock or socket path fails the attach before anything is taken over.
    const cluster = this.options.cluster && this.newClusterNode(this.options.cluster, databaseFileOf(dataSource));
    this.attachment = attachToDataSource(
      dataSource,
      this.options,
      this.scope,
      (label, run, batchable) => this.enqueue({ label, batchable }, (ctx) => run(ctx)),
      (this.publisher || this.options.cluster) && {
        publish: (change) => this.publish(change),
        wants: () => this.wantsChanges(),
      },
      (message) => this.log.warn(message),
    );
    const { connection } = this.attachment.writer;
    this.wal = new WalCheckpointPolicy(connection, this.options.walCheckpoint, this.queue, (m) => this.log.warn(m));
    this.cluster = cluster || undefined;
  }

  private newClusterNode(
    options: NonNullable<ResolvedWriteCoordinatorOptions['cluster']>,
    databaseFile: string,
  ): ClusterNode {
    try {
      const maxFrameBytes = maxFrameBytesFor(this.options.maxPayloadBytes);
      return new ClusterNode(
        options,
        clusterParts(options, databaseFile, maxFrameBytes, this.log),
        maxFrameBytes,
        this.forwarded,
        {
          ...this.clusterObserver,
          roleChanged: (role, previous, primaryPid) => {
            // A host that stopped being the primary writes nothing: failures its file gave while
            // the lease moved away say nothing about a disk (health would stay down for good).
            if (role === 'secondary' && previous === 'primary') this.storage.clear();
            this.clusterObserver.roleChanged?.(role, previous, primaryPid);
          },
        },
      );
    } catch (error) {
      if (error instanceof InvalidOptionsError) throw error; // names its own field already
      const message = error instanceof Error ? error.message : String(error);
      throw new InvalidOptionsError(
        'cluster',
        'a lock file and a socket path this process can use',
        options.lockPath ?? databaseFile,
        `Coordinator.attach(): ${message}`,
      );
    }
  }

  /**
   * Joins the cluster (`cluster` option): takes the primary lock or connects to its holder. Called
   * once handlers are registered (their names are part of the handshake).
   */
  protected async startCluster(): Promise<void> {
    if (!this.cluster) return;
    this.clusterJoined = true;
    await this.cluster.start();
  }

  /**
   * Drains for at most `graceMs`, then shuts down; a running job still unsettled 1 s later has its
   * caller answered with `SHUTDOWN` (no caller is ever left pending). Logs one line per outcome.
   */
  protected async stop(graceMs: number, what = 'shutdownGraceMs'): Promise<void> {
    // A secondary's forwarded requests finish meanwhile; the primary leaves once its queue is done.
    const secondary = this.cluster && !this.cluster.isPrimary ? this.cluster.stop(graceMs) : undefined;
    try {
      await this.stopQueue(graceMs, what);
    } finally {
      await (secondary ?? this.cluster?.stop(0));
    }
  }

  private async stopQueue(graceMs: number, what: string): Promise<void> {
    const startedAt = performance.now();
    const { queueDepth: queuedAtStart, running: runningAtStart } = this.queue.metrics();
    if (await settlesWithin(this.drain(), graceMs)) {
      this.log.log(
        `writes drained: ${queuedAtStart + runningAtStart} job(s) queued or running at the start, ` +
          `all finished in ${Math.round(performance.now() - startedAt)} ms`,
      );
      return;
    }
    const { queueDepth, running } = this.queue.metrics();
    this.log.warn(
      `drain did not finish within ${what}=${graceMs}; rejecting ${queueDepth} queued job(s) with SHUTDOWN` +
        (running ? ', waiting up to 1 s for the running job' : ''),
    );
    if (!(await settlesWithin(this.shutdown(), OVERRUN_MS)) && this.queue.abandonRunning()) {
      this.log.error(
        'the running job did not settle within 1 s; its caller got SHUTDOWN and its transaction is never committed',
      );
    }
  }

  /**
   * Lets the DataSource go once it was destroyed (until then, after a stop, its writes are refused
   * with `SHUTDOWN` rather than run unserialised; `destroy()` itself detaches first).
   */
  protected releaseIfDestroyed(): void {
    if (this.attachment && !this.attachment.dataSource.isInitialized) this.release();
  }

  /** Gives the DataSource back to plain TypeORM now (its writes are no longer serialised). */
  protected release(): void {
    this.wal?.stop();
    this.attachment?.detach();
  }

  /** Runs a `submit()` handler in a job and publishes its request change after commit. */
  private invokeHandler(
    method: string,
    params: unknown,
    meta: WriteRequest['meta'],
    manager: EntityManager,
    job: WriteJob,
  ): Promise<unknown> {
    return this.handlers.invoke(method, params, manager, job, this.options.maxPayloadBytes, (result) => {
      if (!this.wantsChanges()) return;
      this.scope.afterCommit(() =>
        this.publish({
          kind: 'request',
          coordinator: this.name,
          jobId: job.jobId,
          method,
          topic: topicOf(method, this.options.topics),
          params,
          result,
          meta,
        }),
      );
    });
  }

  /** Sends a forwardable call through the cluster (to the primary, or here when this is it). */
  private forward(call: ForwardedCall, meta: WriteRequest['meta'], options: WriteOptions): Promise<unknown> {
    const refused =
      this.refuseInvalid(options, 'WriteCoordinator.submit()') ?? this.queue.refuseIfClosed(options.label);
    if (refused) return refused;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs ?? this.options.cluster!.forwardTimeoutMs;
    const { requestId = randomUUID(), ...rest } = meta ?? {};
    return this.cluster!.forward(call, requestId, {
      deadline: performance.now() + timeoutMs,
      signal: options.signal,
      label: options.label,
      ...(Object.keys(rest).length ? { meta: rest } : {}),
    });
  }

  /** The refusal (`INVALID_OPTIONS`, counted as rejected) of call options that do not validate; undefined when they do. */
  private refuseInvalid<T>(options: WriteOptions, context: string): Promise<T> | undefined {
    try {
      validateCallOptions(options, context);
      return undefined;
    } catch (error) {
      return this.queue.refuse(labelOf(options), () => error as WriteCoordinatorError);
    }
  }

  /** Queues a job on the writer of the attached DataSource, or refuses it before {@link attach}. */
  private enqueue<T>(
    options: EnqueueOptions,
    run: (ctx: JobContext, writer: WriterConnection) => Promise<T>,
  ): Promise<T> {
    const writer = this.attachment?.writer;
    if (!writer) {
      return this.queue.refuse(options.label, (job) => new CoordinatorNotReadyError(this.notReadyReason(), job));
    }
    const start = (ctx: JobContext): Promise<T> => {
      // Between jobs, before this one's BEGIN: a TRUNCATE checkpoint when the WAL is past its limit.
      const checkpoint = this.wal?.beforeJob(ctx);
      return checkpoint ? checkpoint.then(() => run(ctx, writer)) : run(ctx, writer);
    };
    // Several hosts (litefs, static): only the primary's database file takes writes.
    const cluster = this.cluster?.writesNeedPrimary ? this.cluster : undefined;
    if (!cluster) return this.queue.enqueue(start, options);
    if (cluster.localWriteRefusal()) {
      return this.queue.refuse(options.label, (job) => cluster.localWriteRefusal(job)!);
    }
    let ctxOf: JobContext | undefined;
    const done = this.queue.enqueue((ctx) => {
      ctxOf = ctx;
      // A host that learnt it is no longer the primary refuses what is still queued, before BEGIN.
      const refusal = cluster.localWriteRefusal(ctx);
      return refusal ? Promise.reject(refusal) : start(ctx);
    }, options);
    // Explained outside the job: the drain (and a batch's transaction) never waits for the election.
    return done.catch((error: unknown) => this.explainFailure(cluster, error, ctxOf));
  }

  /**
   * Several hosts: a job's failure as its caller sees it. The primary moved away under it (the
   * file refused the write): `NOT_PRIMARY`; otherwise the error itself, counted as a storage
   * failure when it is one.
   */
  private async explainFailure(cluster: ClusterNode, error: unknown, ctx: JobContext | undefined): Promise<never> {
    const explained = await cluster.explainFailure(error, ctx && { jobId: ctx.jobId, label: ctx.label });
    if (!(explained instanceof NotPrimaryError)) this.storage.failed(error);
    throw explained;
  }

  /** What makes this coordinator ready, for the `COORDINATOR_NOT_READY` message. */
  protected get attachHint(): string {
    return 'call attach(dataSource) first';
  }

  private notReadyReason(): string {
    return this.queue.state === 'running'
      ? `coordinator '${this.name}' is not initialised yet (${this.attachHint})`
      : `coordinator '${this.name}' is ${this.queue.state}`;
  }

  /** Whether a change built now would reach anyone (the default publisher: a `Change` listener). */
  private wantsChanges(): boolean {
    return (
      (this.publisher !== undefined && (this.publisher.wants?.() ?? true)) || (this.cluster?.wantsChanges ?? false)
    );
  }

  private publish(change: WriteChange): void {
    this.cluster?.fanOut(change);
    if (!this.publisher) return;
    const result = this.publisher.publish(change);
    if (result && typeof (result as Promise<void>).catch === 'function') {
      (result as Promise<void>).catch((error: unknown) => this.log.error('change publisher failed', error));
    }
  }
}

/** Where a write issued on this host runs now (see {@link Coordinator.writeTarget}). */
export interface WriteTarget {
  /** True when a local write may run on this host. */
  here: boolean;
  /** When `here` is false: the primary's hostname, when known. */
  primary?: string;
}

/** The database file of a better-sqlite3 DataSource (a cluster shares it, and keys its lock and socket on it). */
function databaseFileOf(dataSource: DataSource): string {
  const database = (dataSource.options as { database?: unknown }).database;
  if (typeof database !== 'string' || database === '' || database === ':memory:') {
    throw new InvalidOptionsError(
      'cluster',
      'a DataSource on a database file (processes share it)',
      database,
      'Coordinator.attach()',
    );
  }
  return path.resolve(database);
}

/** The label of possibly invalid call options, for reporting a refusal. */
function labelOf(options: WriteOptions): string | undefined {
  return typeof options.label === 'string' ? options.label : undefined;
}

/**
 * A user's observer sees copies of the jobs' identities, never the queue's own records (which
 * carry the job's settlement functions).
 */
function observerOf(events: CoordinatorObserver): CoordinatorObserver {
  const info = (job: JobInfo): JobInfo => Object.freeze({ jobId: job.jobId, label: job.label });
  return {
    jobSubmitted: events.jobSubmitted && ((job) => events.jobSubmitted!(info(job))),
    jobAccepted: events.jobAccepted && ((job, depth) => events.jobAccepted!(info(job), depth)),
    jobStarted: events.jobStarted && ((job, waitMs) => events.jobStarted!(info(job), waitMs)),
    jobCompleted: events.jobCompleted && ((job, waitMs, runMs) => events.jobCompleted!(info(job), waitMs, runMs)),
    jobFailed: events.jobFailed && ((job, error, ending) => events.jobFailed!(info(job), error, ending)),
    jobRejected: events.jobRejected && ((job, error) => events.jobRejected!(info(job), error)),
    queueSaturated: events.queueSaturated && ((depth) => events.queueSaturated!(depth)),
    queueDrained: events.queueDrained && (() => events.queueDrained!()),
    batchCommitted: events.batchCommitted && ((size, commitMs) => events.batchCommitted!(size, commitMs)),
  };
}

/** The default {@link CoordinatorLog}: the console. */
function consoleLog(name: string): CoordinatorLog {
  const prefix = `[Coordinator(${name})]`;
  return {
    log: () => undefined, // routine progress: silent outside Nest
    warn: (message) => console.warn(prefix, message),
    error: (message, error) => console.error(prefix, message, ...(error === undefined ? [] : [error])),
  };
}
