import { BeforeApplicationShutdown, Logger, OnApplicationShutdown, OnModuleInit } from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type { EventEmitter2 } from '@nestjs/event-emitter';
import type { DataSource } from 'typeorm';
import { ChangePublisher, createEventEmitterPublisher, WriteChange, WriteRequestMeta } from './changes/change-publisher';
import { topicOf } from './changes/change-topics';
import { attachToDataSource, DataSourceAttachment } from './typeorm/data-source-attachment';
import { CoordinatorNotReadyError, InvalidParamsError, WriteCoordinatorError } from './errors';
import { TransactionScope, WriteWork } from './transaction/transaction-scope';
import { ResolvedWriteCoordinatorOptions, validateCallOptions } from './core/coordinator-options';
import { createEventBridge } from './write-coordinator.event-bridge';
import { resolveDataSource } from './write-coordinator.data-source';
import { settlesWithin } from './core/settles-within';
import { StorageHealth, StorageStatus } from './sqlite/storage-health';
import { BatchMetrics, BatchStats } from './core/batch-stats';
import { WriteHandlerRegistry } from './submit/write-handler.registry';
import { WriteCoordinatorShutdown } from './write-coordinator.shutdown';
import { requestProblem } from './submit/write-request.validation';
import type { WriterGate } from './transaction/writer-connection';
import { EnqueueOptions, JobContext, QueueMetrics, WriteQueue, WriteQueueState } from './queue/write-queue';

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
}

/**
 * Serialises every write of one TypeORM DataSource through a single drain: each job runs alone,
 * in its own transaction, in submission order. Inject it (`WriteCoordinator` for the default one,
 * `@InjectWriteCoordinator(name)` for a named one).
 */
export class WriteCoordinator implements OnModuleInit, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger: Logger;
  private readonly queue: WriteQueue;
  private readonly scope: TransactionScope;
  private readonly handlers = new WriteHandlerRegistry();
  private readonly storage = new StorageHealth();
  private readonly batches = new BatchStats();
  private readonly publisher: ChangePublisher | undefined;
  /** Set once at bootstrap; until then every call fails with `COORDINATOR_NOT_READY`. */
  private attachment: DataSourceAttachment | undefined;

  /** @internal Built by `WriteCoordinatorModule`; do not construct it yourself. */
  constructor(
    private readonly options: ResolvedWriteCoordinatorOptions,
    private readonly moduleRef: ModuleRef,
    emitter: EventEmitter2 | undefined,
  ) {
    this.logger = new Logger(`WriteCoordinator(${options.name})`);
    this.queue = new WriteQueue(
      { capacity: options.queueSize, whenFull: options.whenFull, timeoutMs: options.timeoutMs },
      emitter ? createEventBridge(options.name, emitter) : undefined,
    );
    this.scope = new TransactionScope(this, {
      afterCommitError: (error) => this.logger.error('after-commit publisher failed', error),
      committed: (size) => {
        this.storage.committed();
        this.batches.record(size);
      },
      failed: (error) => this.storage.failed(error),
    });
    this.publisher = options.publisher ?? (emitter && createEventEmitterPublisher(emitter));
  }

  /** Name of this coordinator. */
  get name(): string {
    return this.options.name;
  }

  /** `running` (accepting), `draining` (finishing queued work) or `stopped`. */
  get state(): WriteQueueState {
    return this.queue.state;
  }

  /** True once bootstrap attached the DataSource and until the coordinator stops. */
  get isReady(): boolean {
    return this.attachment !== undefined && this.queue.state === 'running';
  }

  /** The DataSource whose writes this coordinator serialises (undefined before bootstrap). */
  get dataSource(): DataSource | undefined {
    return this.attachment?.dataSource;
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
    try {
      validateCallOptions(options, 'WriteCoordinator.run()');
    } catch (error) {
      return this.queue.refuse(labelOf(options), () => error as WriteCoordinatorError);
    }
    return (
      this.scope.runInline(work) ??
      this.enqueue({ ...options, batchable: true }, (ctx, gate) => this.scope.runJob(gate, ctx, work))
    );
  }

  /**
   * Runs the `@WriteHandler` registered for `request.method`, exactly like {@link run}, and
   * resolves with a JSON copy of its result. After commit the change publisher is told.
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
    return this.run(
      (manager, job) =>
        this.handlers.invoke(method, params, manager, job, this.options.maxPayloadBytes, (result) => {
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
        }),
      { ...options, label: options.label ?? method },
    );
  }

  /** A consistent snapshot of counters, gauges and recent latencies. */
  metrics(): CoordinatorMetrics {
    return {
      coordinator: this.name,
      ...this.queue.metrics(),
      storage: this.storage.status(),
      batches: this.batches.snapshot(),
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

  /** @internal Registers a `@WriteHandler`; called by the explorer at bootstrap. */
  registerHandler(...args: Parameters<WriteHandlerRegistry['register']>): void {
    this.handlers.register(...args);
  }

  /**
   * @internal Resolves the DataSource and takes it over (PRAGMAs, read connection, every write
   * path routed through this coordinator); from now on the coordinator accepts work.
   */
  onModuleInit(): void {
    const dataSource = resolveDataSource(this.moduleRef, this.options.dataSource);
    this.attachment = attachToDataSource(
      dataSource,
      this.options,
      this.scope,
      (label, run, batchable) => this.enqueue({ label, batchable }, run),
      this.publisher && { publish: (change) => this.publish(change), wants: () => this.wantsChanges() },
    );
    this.scope.batching = {
      maxSize: this.options.maxBatchSize,
      waitMs: this.options.batchWaitMs,
      take: () => this.queue.takeNext(),
      whenArrival: (ms) => this.queue.whenArrival(ms),
    };
  }

  /**
   * @internal Waits for the application's readiness delay (on SIGTERM: health reports 503 while
   * the app keeps serving; then the HTTP server stops accepting connections), drains for at most
   * `shutdownGraceMs`, then shuts down; runs before `@nestjs/typeorm` destroys the DataSource (in
   * `onApplicationShutdown`).
   */
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    await this.moduleRef.get(WriteCoordinatorShutdown, { strict: true }).beforeDrain(signal);
    const startedAt = performance.now();
    const { queueDepth: queuedAtStart, running: runningAtStart } = this.queue.metrics();
    if (await settlesWithin(this.drain(), this.options.shutdownGraceMs)) {
      this.logger.log(
        `writes drained: ${queuedAtStart + runningAtStart} job(s) queued or running at the start, ` +
          `all finished in ${Math.round(performance.now() - startedAt)} ms`,
      );
      return;
    }
    const { queueDepth, running } = this.queue.metrics();
    this.logger.warn(
      `drain did not finish within shutdownGraceMs=${this.options.shutdownGraceMs}; ` +
        `rejecting ${queueDepth} queued job(s) with SHUTDOWN` +
        (running ? ', waiting up to 1 s for the running job' : ''),
    );
    if (!(await settlesWithin(this.shutdown(), 1_000)) && this.queue.abandonRunning()) {
      this.logger.error(
        'the running job did not settle within 1 s; its caller got SHUTDOWN and its transaction is never committed',
      );
    }
  }

  /**
   * @internal Nothing to undo here: the coordinator stopped in `beforeApplicationShutdown`, and it
   * keeps the DataSource until `@nestjs/typeorm` (or the app) destroys it, refusing its writes
   * with `SHUTDOWN` meanwhile, so that no shutdown hook of another module can write unserialised.
   * A DataSource already destroyed is let go now.
   */
  onApplicationShutdown(): void {
    if (this.attachment && !this.attachment.dataSource.isInitialized) this.attachment.detach();
  }

  /** Queues a job on the gate of the attached DataSource, or refuses it before bootstrap. */
  private enqueue<T>(options: EnqueueOptions, run: (ctx: JobContext, gate: WriterGate) => Promise<T>): Promise<T> {
    const gate = this.attachment?.gate;
    if (!gate) {
      return this.queue.refuse(options.label, (job) => new CoordinatorNotReadyError(this.notReadyReason(), job));
    }
    return this.queue.enqueue((ctx) => run(ctx, gate), options);
  }

  private notReadyReason(): string {
    return this.queue.state === 'running'
      ? `coordinator '${this.name}' is not initialised yet (WriteCoordinatorModule.forRoot() attaches it at bootstrap)`
      : `coordinator '${this.name}' is ${this.queue.state}`;
  }

  /** Whether a change built now would reach anyone (the default publisher: a `Change` listener). */
  private wantsChanges(): boolean {
    return this.publisher !== undefined && (this.publisher.wants?.() ?? true);
  }

  private publish(change: WriteChange): void {
    if (!this.publisher) return;
    const result = this.publisher.publish(change);
    if (result && typeof (result as Promise<void>).catch === 'function') {
      (result as Promise<void>).catch((error: unknown) => this.logger.error('change publisher failed', error));
    }
  }
}

/** The label of possibly invalid call options, for reporting a refusal. */
function labelOf(options: WriteOptions): string | undefined {
  return typeof options.label === 'string' ? options.label : undefined;
}
