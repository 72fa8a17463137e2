import { AsyncLocalStorage } from 'node:async_hooks';
import type { DataSource, EntityManager } from 'typeorm';
import { BusyError, InternalError, WriteCoordinatorError } from './errors';
import { nativeInTransaction, resyncAfterJob } from './query-runner-sync';
import { isBusy, sqliteCode } from './sqlite-error';
import type { JobContext } from './write-queue';

/** What a job's work function receives besides the manager. */
export interface WriteJob {
  /** Id of the job (shared by every re-entrant call made inside it). */
  readonly jobId: string;
  /** Aborted when the job is cancelled or passes its deadline; the work should stop early. */
  readonly signal: AbortSignal;
}

/** A unit of work run inside a job's transaction. */
export type WriteWork<T> = (manager: EntityManager, job: WriteJob) => T | Promise<T>;

/**
 * @internal One transaction level of a running job: the top-level transaction, or a savepoint of
 * a re-entrant call. Stored in AsyncLocalStorage so that calls made from inside the job find it.
 */
interface Frame {
  readonly owner: object;
  readonly manager: EntityManager;
  readonly job: WriteJob;
  readonly parent: Frame | undefined;
  /** False once this level's transaction or savepoint has ended (late async calls then queue). */
  open: boolean;
  /** Serialises re-entrant calls made concurrently from this level: savepoints must nest. */
  tail: Promise<unknown>;
  /** Run after the top-level COMMIT, in order; discarded on rollback. */
  afterCommit: Array<() => void>;
}

const storage = new AsyncLocalStorage<Frame>();

/**
 * @internal Runs work in transactions on behalf of an owner (a coordinator): a top-level job gets
 * its own transaction, a re-entrant call a savepoint inside the enclosing job's transaction.
 */
export class TransactionScope {
  constructor(
    private readonly owner: object,
    private readonly onAfterCommitError: (error: unknown) => void,
  ) {}

  /**
   * Registers a callback to run after the enclosing job commits (discarded if it rolls back).
   * @returns false when not inside a job of this owner.
   */
  afterCommit(callback: () => void): boolean {
    const frame = this.frame();
    if (!frame) return false;
    frame.afterCommit.push(callback);
    return true;
  }

  /**
   * Runs a queued job: BEGIN, work, COMMIT if the job may still commit, else ROLLBACK. Errors of
   * the work are re-thrown as they are; BEGIN/COMMIT failures become coordinator errors.
   */
  async runJob<T>(dataSource: DataSource, ctx: JobContext, work: WriteWork<T>): Promise<T> {
    const runner = dataSource.createQueryRunner();
    try {
      await runner.startTransaction();
    } catch (error) {
      await resyncAfterJob(dataSource, runner);
      throw ownFailure('could not begin its transaction', error, ctx);
    }
    const job: WriteJob = { jobId: ctx.jobId, signal: ctx.signal };
    const frame: Frame = {
      owner: this.owner,
      manager: runner.manager,
      job,
      parent: storage.getStore(),
      open: true,
      tail: Promise.resolve(),
      afterCommit: [],
    };
    try {
      const result = await storage.run(frame, () => work(runner.manager, job));
      if (!ctx.claimCommit()) throw ctx.signal.reason;
      try {
        await runner.commitTransaction();
      } catch (error) {
        throw ownFailure('could not commit its transaction; nothing was written', error, ctx);
      }
      if (nativeInTransaction(dataSource)) {
        throw ownFailure(
          'left transaction levels open (a startTransaction() without commit); nothing was written',
          undefined,
          ctx,
        );
      }
      frame.open = false;
      this.runAfterCommit(frame.afterCommit);
      return result;
    } catch (error) {
      frame.open = false;
      if (runner.isTransactionActive) {
        try {
          await runner.rollbackTransaction();
        } catch {
          // The original error matters to the caller; SQLite may have ended the transaction itself.
        }
      }
      await resyncAfterJob(dataSource, runner);
      throw error;
    } finally {
      await runner.release();
    }
  }

  /**
   * Runs a re-entrant call inline, in a savepoint of the enclosing job's transaction. Calls made
   * concurrently from one level run one after the other, so their savepoints nest properly.
   * @returns undefined when not inside a job of this owner (the caller must queue instead).
   */
  runInline<T>(work: WriteWork<T>): Promise<T> | undefined {
    const frame = this.frame();
    if (!frame) return undefined;
    const step = () =>
      frame.manager.transaction(async (manager) => {
        const child: Frame = { ...frame, manager, parent: frame, open: true, tail: Promise.resolve(), afterCommit: [] };
        try {
          const result = await storage.run(child, () => work(manager, frame.job));
          frame.afterCommit.push(...child.afterCommit);
          return result;
        } finally {
          child.open = false;
        }
      });
    const result = frame.tail.then(step, step);
    frame.tail = result.catch(() => undefined);
    return result;
  }

  /** The innermost open level of a job of this owner in the current async context. */
  private frame(): Frame | undefined {
    for (let f = storage.getStore(); f; f = f.parent) {
      if (f.owner === this.owner && f.open) return f;
    }
    return undefined;
  }

  private runAfterCommit(callbacks: Array<() => void>): void {
    for (const callback of callbacks) {
      try {
        callback();
      } catch (error) {
        this.onAfterCommitError(error);
      }
    }
  }
}

function ownFailure(what: string, error: unknown, ctx: JobContext): WriteCoordinatorError {
  const options = { cause: error, jobId: ctx.jobId, label: ctx.label };
  const detail = error === undefined ? what : `${what} (${error instanceof Error ? error.message : String(error)})`;
  return isBusy(sqliteCode(error)) ? new BusyError(detail, options) : new InternalError(detail, options);
}
