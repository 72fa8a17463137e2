import { TransactionNotStartedError, TypeORMError } from 'typeorm';
import type { IsolationLevel } from 'typeorm/driver/types/IsolationLevel';
import { validateIsolationLevel } from 'typeorm/driver/validate-isolation-level';
import { appendCallSite, captureCallSite } from './call-site';
import { TransactionControlError, WriteOutsideJobError } from '../errors';
import type { ReadConnection } from './read-connection';
import { firstKeyword, statementKind } from '../sqlite/sql-statement';
import type { TransactionScope } from '../transaction/transaction-scope';
import type { WriteWork } from '../transaction/write-job';
import type { JobContext } from '../queue/queue.types';
import { isCoordinatorCall, RunnerMethods, WriterConnection } from '../transaction/writer-connection';

/**
 * What happens to a TypeORM write issued outside a coordinator job (a `repo.save()` in a
 * controller, a `dataSource.transaction()`, a raw `INSERT` through `dataSource.query()`):
 * - `'serialize'`: it runs as its own job on the coordinator (a transaction holds the drain until
 *   it commits or rolls back);
 * - `'warn'`: the same, and a warning naming the operation is logged once per operation, to help
 *   move such writes into explicit jobs;
 * - `'throw'`: it is refused with `WRITE_OUTSIDE_JOB` and nothing is written;
 * - `'off'`: it runs unserialised, as TypeORM alone would run it (unsafe under concurrency).
 */
export type OutsideWriteMode = 'serialize' | 'warn' | 'throw' | 'off';

/** @internal Puts a job on the coordinator's queue (with its not-ready and state checks). */
export type JobEnqueuer = <T>(label: string, run: (ctx: JobContext) => Promise<T>, batchable: boolean) => Promise<T>;

/** TypeORM's literal at depth 0, and what the coordinator sends instead. */
const DEFERRED_BEGIN = 'BEGIN TRANSACTION';
const IMMEDIATE_BEGIN = 'BEGIN IMMEDIATE TRANSACTION';

/**
 * @internal Makes every write path of one DataSource go through its coordinator. It routes what
 * reaches TypeORM's shared query runner (raw queries, `startTransaction()` … `commitTransaction()`)
 * and, through {@link installTypeormPatches}, the EntityManager and QueryBuilder writes:
 * - inside a job: passed through, so they join the job's transaction;
 * - outside a job: a write runs as its own job (`writesOutsideJobs`), a read goes to the read
 *   connection, a transaction opened on the runner holds the drain until it ends.
 */
export class WriteRouter {
  private readonly warned = new Set<string>();

  constructor(
    private readonly writer: WriterConnection,
    private readonly scope: TransactionScope,
    private readonly reader: ReadConnection | undefined,
    private readonly mode: OutsideWriteMode,
    private readonly enqueue: JobEnqueuer,
    /** Where `'warn'` mode's warnings go (the coordinator's logger). */
    private readonly warn: (message: string) => void,
  ) {}

  /** Replaces the shared runner's methods with routing ones; {@link uninstall} restores them. */
  install(): void {
    const runner = this.writer.runner as unknown as RunnerMethods;
    runner.query = (sql, parameters, structured) => this.query(sql, parameters, structured);
    runner.startTransaction = (level) => this.startTransaction(level);
    runner.commitTransaction = () => this.endTransaction('commit');
    runner.rollbackTransaction = () => this.endTransaction('rollback');
  }

  uninstall(): void {
    const runner = this.writer.runner as unknown as Partial<RunnerMethods>;
    delete runner.query;
    delete runner.startTransaction;
    delete runner.commitTransaction;
    delete runner.rollbackTransaction;
  }

  /** An EntityManager / QueryBuilder write: joins the job it is called from, else becomes one. */
  write<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (this.scope.isInside) return call();
    return this.outside(operation, call, (ctx) => this.scope.runJob(this.writer, ctx, call));
  }

  /**
   * `manager.transaction(fn)` / `dataSource.transaction(fn)` in both call forms. An isolation level
   * SQLite does not support is refused as TypeORM refuses it; a supported one changes nothing
   * (writes are serialised anyway, and a savepoint has no level of its own). Like TypeORM's, it
   * releases the shared runner when it ends if it took it from the DataSource (`releasesRunner`):
   * its loaded tables, which may describe DDL the transaction rolled back, are then reloaded.
   */
  transaction<T>(
    work: WriteWork<T>,
    unserialised: () => Promise<T>,
    call: { level?: string; releasesRunner: boolean },
  ): Promise<T> {
    const refused = this.refusedLevel(call.level);
    if (refused) return refused;
    const ended = (done: Promise<T>) => (call.releasesRunner ? done.finally(() => this.writer.runner.release()) : done);
    const inline = this.scope.runInline(work);
    if (inline) return ended(inline);
    // Released inside the job, before the drain moves on to the next one.
    return this.outside('EntityManager.transaction', unserialised, (ctx) =>
      ended(this.scope.runJob(this.writer, ctx, work)),
    );
  }

  private query(sql: string, parameters?: unknown[], structured?: boolean): Promise<unknown> {
    // The coordinator's own BEGIN/COMMIT (its context is already marked): straight through.
    if (isCoordinatorCall())
      return this.writer.query(sql === DEFERRED_BEGIN ? IMMEDIATE_BEGIN : sql, parameters, structured);
    const run = () => this.writer.query(sql, parameters, structured);
    const kind = statementKind(sql);
    if (kind === 'transaction' && this.scope.isInside) {
      return Promise.reject(
        new TransactionControlError(firstKeyword(sql)!.toUpperCase(), { jobId: this.scope.currentJobId }),
      );
    }
    // A WITH can end in an INSERT: SQLite, not the first keyword, says whether it writes.
    const reads = kind === 'read' && this.writer.reads(sql);
    const inside = this.scope.statement(run, reads);
    if (inside) return inside;
    const ended = this.endedHeldTransaction();
    if (ended) return ended;
    if (reads) {
      if (!this.reader?.isOpen) return run();
      // The read connection lacks what only the writer has (TEMP tables, later ATTACHes): the
      // writer answers those, through the queue.
      if (this.reader.reads(sql)) return this.reader.query(sql, parameters, structured);
    }
    const operation = `query(${firstKeyword(sql)?.toUpperCase() ?? 'SQL'})`;
    if (kind === 'transaction') {
      if (this.mode === 'off') return run();
      return Promise.reject(
        new WriteOutsideJobError(
          operation,
          'transaction statements only make sense inside a transaction of your own; ' +
            'use dataSource.transaction(fn) or queryRunner.startTransaction()',
        ),
      );
    }
    const transactional = kind !== 'connection';
    return this.outside(
      operation,
      run,
      (ctx) => this.scope.runJob(this.writer, ctx, run, { transactional }),
      transactional,
    );
  }

  private startTransaction(level?: string): Promise<void> {
    const refused = this.refusedLevel(level);
    if (refused) return refused;
    // Inside a job: a nested level of the caller's own, ordered with the job's other statements.
    const inside = this.scope.statement(() => this.writer.original.startTransaction(level));
    if (inside) return inside;
    return this.outside('queryRunner.startTransaction', () => this.writer.original.startTransaction(level), undefined);
  }

  private endTransaction(end: 'commit' | 'rollback'): Promise<void> {
    const original =
      end === 'commit' ? this.writer.original.commitTransaction : this.writer.original.rollbackTransaction;
    const held = this.scope.heldTransaction();
    if (held && (this.writer.depth <= 1 || !held.open)) {
      if (end === 'rollback') return held.held.rollback();
      const site = captureCallSite();
      return held.held.commit().catch((error: unknown) => Promise.reject(appendCallSite(error, site)));
    }
    if (this.scope.isInside) {
      if (this.writer.depth > (this.scope.jobBaseDepth ?? 1)) return this.scope.statement(original) ?? original();
      return Promise.reject(
        new TypeORMError(
          `${end}Transaction() would end the coordinator job's own transaction; ` +
            'the coordinator commits it when the job returns and rolls it back when it throws',
        ),
      );
    }
    return this.mode === 'off' ? original() : Promise.reject(new TransactionNotStartedError());
  }

  /**
   * Routes a write issued outside a job by `writesOutsideJobs`. `job` runs it as a job; without
   * one, it is a transaction to hold on the drain until its caller ends it.
   */
  private outside<T>(
    operation: string,
    unserialised: () => Promise<T>,
    job: ((ctx: JobContext) => Promise<T>) | undefined,
    batchable = true,
  ): Promise<T> {
    const ended = this.endedHeldTransaction();
    if (ended) return ended;
    switch (this.mode) {
      case 'off':
        return unserialised();
      case 'throw':
        return Promise.reject(
          new WriteOutsideJobError(
            operation,
            "writesOutsideJobs is 'throw'; run it inside coordinator.run(), submit() or a @SerializedWrite method",
          ),
        );
      case 'warn':
        this.warnOnce(operation);
        break;
      case 'serialize':
        break;
    }
    // The write runs from the queue, where its caller's frames are gone: keep them for its error.
    const site = captureCallSite();
    // A held transaction ends when its caller says so, and PRAGMAs run outside any transaction:
    // neither can share a batch.
    const queued = job
      ? this.enqueue(operation, job, batchable)
      : (this.scope.beginHeld(this.writer, (run) => this.enqueue(operation, run, false)) as Promise<T>);
    return queued.catch((error: unknown) => Promise.reject(appendCallSite(error, site)));
  }

  /**
   * TypeORM's check of an isolation level (the DataSource's default when none is given), made
   * before anything is queued or run: a level SQLite does not support writes nothing.
   * @returns the rejection with TypeORM's `TypeORMError`, or undefined when the level is supported.
   */
  private refusedLevel(level: string | undefined): Promise<never> | undefined {
    try {
      validateIsolationLevel(
        this.writer.dataSource.driver.supportedIsolationLevels,
        (level ?? this.writer.dataSource.options.isolationLevel) as IsolationLevel | undefined,
      );
      return undefined;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** A transaction of this context ended by the coordinator (cancelled, timed out): its later calls fail. */
  private endedHeldTransaction(): Promise<never> | undefined {
    const held = this.scope.heldTransaction();
    if (!held || held.open) return undefined;
    return held.held.outcome.then(
      () => Promise.reject(new TransactionNotStartedError()),
      (error: unknown) => Promise.reject(error instanceof Error ? error : new TransactionNotStartedError()),
    );
  }

  private warnOnce(operation: string): void {
    if (this.warned.has(operation)) return;
    this.warned.add(operation);
    const caller = new Error().stack
      ?.split('\n')
      .slice(1)
      .find((line) => !/node_modules|write-coordinator[\\/]src|node:internal/.test(line))
      ?.trim();
    this.warn(
      `${operation} ran outside a coordinator job and was serialised as its own job` +
        `${caller ? ` (${caller})` : ''}; move it into coordinator.run(), submit() or a @SerializedWrite method ` +
        "(logged once per operation; writesOutsideJobs: 'serialize' silences this)",
    );
  }
}
