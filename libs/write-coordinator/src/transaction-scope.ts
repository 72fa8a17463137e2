import { AsyncLocalStorage } from 'node:async_hooks';
import type { EntityManager } from 'typeorm';
import { BusyError, InternalError, WriteCoordinatorError } from './errors';
import { HeldTransaction } from './held-transaction';
import { nativeInTransaction } from './query-runner-sync';
import { isBusy, sqliteCode } from './sqlite-error';
import type { RawStatement } from './raw-statements';
import type { WriterGate } from './writer-gate';
import type { JobContext } from './write-queue';

/** What a job's work function receives besides the manager. */
export interface WriteJob {
  /** Id of the job (shared by every re-entrant call made inside it). */
  readonly jobId: string;
  /** Aborted when the job is cancelled or passes its deadline; the work should stop early. */
  readonly signal: AbortSignal;
  /**
   * The raw fast path: a cached prepared statement on the DataSource's better-sqlite3
   * connection, in this job's transaction and current savepoint (see {@link RawStatement}).
   * TypeORM subscribers and entity change events do not see its writes.
   */
  statement(sql: string): RawStatement;
}

/** A unit of work run inside a job's transaction. */
export type WriteWork<T> = (manager: EntityManager, job: WriteJob) => T | Promise<T>;

/**
 * @internal One transaction level of a running job: the top-level transaction, or a savepoint of
 * a re-entrant call. Stored in AsyncLocalStorage so that calls made from inside the job find it.
 */
interface Frame {
  readonly owner: object;
  readonly gate: WriterGate;
  job: WriteJob;
  readonly parent: Frame | undefined;
  /** True while this level's transaction or savepoint is open (late async calls then queue). */
  open: boolean;
  /** Serialises re-entrant calls made concurrently from this level: savepoints must nest. */
  tail: Promise<unknown>;
  /** Run after the top-level COMMIT, in order; discarded on rollback. */
  afterCommit: Array<() => void>;
  /** Set when the level is a transaction its caller opened with `queryRunner.startTransaction()`. */
  readonly held?: HeldTransaction;
}

/** How {@link TransactionScope.runJob} runs a job. */
export interface JobMode {
  /** False for statements that must run outside any transaction (PRAGMA, VACUUM). Default true. */
  transactional?: boolean;
  /** A frame prepared before the job started (a held transaction's). */
  frame?: Frame;
}

/** What the owner of a scope is told about the jobs it runs. */
export interface ScopeHooks {
  /** An after-commit callback threw (it never fails the job). */
  afterCommitError(error: unknown): void;
  /** A job's transaction committed. */
  committed(): void;
  /** A job ended without commit, with this error. */
  failed(error: unknown): void;
}

const storage = new AsyncLocalStorage<Frame>();
const NO_JOB: WriteJob = Object.freeze({
  jobId: '',
  signal: new AbortController().signal,
  statement(): never {
    throw new Error('no job is running');
  },
});

/**
 * @internal Runs work in transactions on behalf of an owner (a coordinator): a top-level job gets
 * its own transaction, a re-entrant call a savepoint inside the enclosing job's transaction.
 */
export class TransactionScope {
  constructor(
    private readonly owner: object,
    private readonly hooks: ScopeHooks,
  ) {}

  /** True when the current async context is inside an open job of this owner. */
  get isInside(): boolean {
    return this.frame() !== undefined;
  }

  /** Id of the job the current async context runs in, if any. */
  get currentJobId(): string | undefined {
    return this.frame()?.job.jobId;
  }

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
   * Runs a queued job: BEGIN IMMEDIATE, work, COMMIT if the job may still commit, else ROLLBACK.
   * Errors of the work are re-thrown as they are; BEGIN/COMMIT failures become coordinator errors.
   */
  async runJob<T>(gate: WriterGate, ctx: JobContext, work: WriteWork<T>, mode: JobMode = {}): Promise<T> {
    const frame = mode.frame ?? this.newFrame(gate, storage.getStore());
    const job: WriteJob = {
      jobId: ctx.jobId,
      signal: ctx.signal,
      statement: (sql) => gate.statements.statement(sql, () => frame.open, ctx.jobId),
    };
    frame.job = job;
    if (mode.transactional === false) return this.runWithoutTransaction(frame, work);
    try {
      await gate.begin(ctx.signal);
    } catch (error) {
      this.hooks.failed(error);
      throw error === ctx.signal.reason ? error : ownFailure('could not begin its transaction', error, ctx);
    }
    frame.open = true;
    try {
      const result = await storage.run(frame, () => work(gate.manager, job));
      if (!ctx.claimCommit()) throw ctx.signal.reason;
      try {
        // Still inside the frame: subscribers' BeforeTransactionCommit writes join the transaction.
        await storage.run(frame, () => gate.original.commitTransaction());
      } catch (error) {
        throw ownFailure('could not commit its transaction; nothing was written', error, ctx);
      }
      frame.open = false;
      if (nativeInTransaction(gate.dataSource)) {
        throw ownFailure(
          'left transaction levels open (a startTransaction() without commit); nothing was written',
          undefined,
          ctx,
        );
      }
      this.hooks.committed();
      this.runAfterCommit(frame.afterCommit);
      return result;
    } catch (error) {
      frame.open = false;
      this.hooks.failed(error);
      if (gate.runner.isTransactionActive) {
        try {
          await gate.original.rollbackTransaction();
        } catch {
          // The original error matters to the caller; SQLite may have ended the transaction itself.
        }
      }
      await gate.resync();
      throw error;
    } finally {
      await gate.runner.release();
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
      frame.gate.savepoint(async () => {
        const child = this.newFrame(frame.gate, frame);
        child.job = frame.job;
        child.open = true;
        try {
          const result = await storage.run(child, () => work(frame.gate.manager, frame.job));
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

  /**
   * Opens a held transaction for a caller of `queryRunner.startTransaction()` outside a job: the
   * caller's async context (from this synchronous call on) belongs to a job that `enqueue` runs
   * and that holds the drain until the caller commits or rolls back.
   *
   * @returns resolves once the transaction is open; rejects if the job never got to open it.
   */
  beginHeld(
    gate: WriterGate,
    enqueue: (run: (ctx: JobContext) => Promise<unknown>) => Promise<unknown>,
  ): Promise<void> {
    const held = new HeldTransaction();
    const frame = this.newFrame(gate, storage.getStore(), held);
    // The caller's own continuation must run in the frame: only enterWith reaches it.
    storage.enterWith(frame);
    return new Promise<void>((opened, failed) => {
      held.outcome = enqueue((ctx) =>
        this.runJob(
          gate,
          ctx,
          (_manager, job) => {
            opened();
            return held.hold(job.signal);
          },
          { frame },
        ),
      );
      held.outcome.catch(failed);
    });
  }

  /**
   * The held transaction the current context opened, while its caller may still end it: open,
   * or ended by the coordinator (cancelled, timed out, failed) but not yet by the caller.
   */
  heldTransaction(): { held: HeldTransaction; open: boolean; depth: number } | undefined {
    for (let f = storage.getStore(); f; f = f.parent) {
      if (f.owner !== this.owner) continue;
      if (f.held && !f.held.endedByCaller) return { held: f.held, open: f.open, depth: f.gate.depth };
      if (f.open) return undefined;
    }
    return undefined;
  }

  /** The innermost open level of a job of this owner in the current async context. */
  private frame(): Frame | undefined {
    for (let f = storage.getStore(); f; f = f.parent) {
      if (f.owner === this.owner && f.open) return f;
    }
    return undefined;
  }

  private newFrame(gate: WriterGate, parent: Frame | undefined, held?: HeldTransaction): Frame {
    return {
      owner: this.owner,
      gate,
      job: NO_JOB,
      parent,
      open: false,
      tail: Promise.resolve(),
      afterCommit: [],
      held,
    };
  }

  private async runWithoutTransaction<T>(frame: Frame, work: WriteWork<T>): Promise<T> {
    frame.open = true;
    try {
      const result = await storage.run(frame, () => work(frame.gate.manager, frame.job));
      frame.open = false;
      this.runAfterCommit(frame.afterCommit);
      return result;
    } finally {
      frame.open = false;
    }
  }

  private runAfterCommit(callbacks: Array<() => void>): void {
    for (const callback of callbacks) {
      try {
        callback();
      } catch (error) {
        this.hooks.afterCommitError(error);
      }
    }
  }
}

function ownFailure(what: string, error: unknown, ctx: JobContext): WriteCoordinatorError {
  const options = { cause: error, jobId: ctx.jobId, label: ctx.label };
  const detail = error === undefined ? what : `${what} (${error instanceof Error ? error.message : String(error)})`;
  return isBusy(sqliteCode(error)) ? new BusyError(detail, options) : new InternalError(detail, options);
}
