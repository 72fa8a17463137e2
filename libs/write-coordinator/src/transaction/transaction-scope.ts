import { HeldTransaction } from './held-transaction';
import type { JobContext } from '../queue/queue.types';
import { Batching, GroupCommit } from './group-commit';
import { admit, admitStep, Frame, frames, IDLE_TAIL, JobRun, newJobRun, NO_JOB, unblock, whenQuiet } from './job-frame';
import {
  beginJob,
  levelsLeftOpen,
  levelsLeftOpenInCall,
  ownFailure,
  rollbackTo,
  runAfterCommit,
  ScopeHooks,
  settled,
} from './job-steps';
import type { WriteWork } from './write-job';
import type { WriterConnection } from './writer-connection';

/** How {@link TransactionScope.runJob} runs a job. */
export interface JobMode {
  /** False for statements that must run outside any transaction (PRAGMA, VACUUM). Default true. */
  transactional?: boolean;
  /** A frame prepared before the job started (a held transaction's). */
  frame?: Frame;
}

/**
 * @internal Runs a coordinator's work in transactions: a top-level job gets its own transaction
 * (or a savepoint in a group-commit batch), a re-entrant call a savepoint inside the enclosing
 * job's transaction. Frames are tagged with their scope, so that coordinators of several
 * DataSources never see each other's jobs.
 */
export class TransactionScope {
  /** Group commit: the running job takes the jobs queued behind it into its transaction. */
  private readonly group: GroupCommit;

  constructor(
    private readonly hooks: ScopeHooks,
    batching: Batching,
  ) {
    this.group = new GroupCommit(hooks, batching);
  }

  /** TypeORM depth of the current job's own level (see {@link Frame.baseDepth}), if inside one. */
  get jobBaseDepth(): number | undefined {
    return this.frame()?.baseDepth;
  }

  /** True when the current async context is inside an open job of this scope. */
  get isInside(): boolean {
    return this.frame() !== undefined;
  }

  /** Id of the job the current async context runs in, if any. */
  get currentJobId(): string | undefined {
    return this.frame()?.job.jobId;
  }

  /**
   * Registers a callback to run after the enclosing job commits (discarded if it rolls back).
   * @returns false when not inside a job of this scope.
   */
  afterCommit(callback: () => void): boolean {
    const frame = this.frame();
    if (!frame) return false;
    frame.afterCommit.push(callback);
    return true;
  }

  /**
   * Runs a statement issued from inside a job, at the level it was issued from: held back while
   * a re-entrant call of that level has its savepoint open (else the statement would share the
   * savepoint's fate), refused once the job was abandoned, counted while in flight.
   * @returns undefined when not inside a job of this scope (the caller must route it instead).
   */
  statement<T>(step: () => Promise<T>, reads = false): Promise<T> | undefined {
    const frame = this.frame();
    return frame && admit(frame, step, reads);
  }

  /**
   * Runs a queued job: BEGIN IMMEDIATE, work, COMMIT if the job may still commit, else ROLLBACK.
   * Errors of the work are re-thrown as they are; BEGIN/COMMIT failures become coordinator errors.
   */
  async runJob<T>(writer: WriterConnection, ctx: JobContext, work: WriteWork<T>, mode: JobMode = {}): Promise<T> {
    const frame = mode.frame ?? this.newFrame(writer, frames.getStore());
    frame.job = {
      jobId: ctx.jobId,
      get signal() {
        return ctx.signal; // created on first use: most jobs never look at it
      },
      statement: (sql) => writer.statements.statement(sql, () => this.rawStatementProblem(frame), ctx.jobId),
    };
    if (mode.transactional === false) return this.runWithoutTransaction(frame, work);
    if (this.group.isOpen) return this.group.member(writer, ctx, frame, work);
    if (this.group.enabled && !mode.frame) return this.group.lead(writer, ctx, frame, work);
    await beginJob(writer, ctx, this.hooks);
    frame.open = true;
    try {
      const result = await frames.run(frame, () => work(writer.manager, frame.job));
      await settled(frame); // re-entrant calls and statements the work did not await are part of the job
      if (!ctx.claimCommit()) throw ctx.signal.reason;
      const commitStarted = performance.now();
      try {
        // Still inside the frame: subscribers' BeforeTransactionCommit writes join the transaction.
        await frames.run(frame, () => writer.original.commitTransaction());
      } catch (error) {
        // A held transaction's COMMIT is its caller's own commitTransaction(): TypeORM's error, as is.
        throw frame.held ? error : ownFailure('could not commit its transaction; nothing was written', error, ctx);
      }
      frame.open = false;
      if (writer.inTransaction) throw levelsLeftOpen(ctx);
      this.hooks.committed(1, performance.now() - commitStarted);
      runAfterCommit(frame.afterCommit, this.hooks);
      return result;
    } catch (error) {
      frame.open = false;
      this.hooks.failed(error);
      await writer.rollbackIfOpen(); // SQLite may have ended the transaction itself
      await writer.resync();
      throw error;
    }
  }

  /**
   * Runs a re-entrant call inline, in a savepoint of the enclosing job's transaction. Calls made
   * concurrently from one level run one after the other, so their savepoints nest properly, and
   * the level's own statements wait while one of them has its savepoint open.
   * @returns undefined when not inside a job of this scope (the caller must queue instead).
   */
  runInline<T>(work: WriteWork<T>): Promise<T> | undefined {
    const frame = this.frame();
    if (!frame) return undefined;
    const step = () => this.runChild(frame, work);
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
    writer: WriterConnection,
    enqueue: (run: (ctx: JobContext) => Promise<unknown>) => Promise<unknown>,
  ): Promise<void> {
    const held = new HeldTransaction();
    const frame = this.newFrame(writer, frames.getStore(), held);
    // The caller's own continuation must run in the frame: only enterWith reaches it.
    frames.enterWith(frame);
    return new Promise<void>((opened, failed) => {
      held.outcome = enqueue((ctx) =>
        this.runJob(
          writer,
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
  heldTransaction(): { held: HeldTransaction; open: boolean } | undefined {
    for (let f = frames.getStore(); f; f = f.parent) {
      if (f.scope !== this) continue;
      if (f.held && !f.held.endedByCaller) return { held: f.held, open: f.open };
      if (f.open) return undefined;
    }
    return undefined;
  }

  /**
   * The innermost level of a job of this scope in the current async context: an open one, or one
   * whose job was abandoned (its statements are then refused rather than run as new jobs).
   */
  private frame(): Frame | undefined {
    for (let f = frames.getStore(); f; f = f.parent) {
      if (f.scope === this && (f.open || f.run.abandoned !== undefined)) return f;
    }
    return undefined;
  }

  private newFrame(writer: WriterConnection, parent: Frame | undefined, held?: HeldTransaction, run?: JobRun): Frame {
    return {
      scope: this,
      writer,
      job: NO_JOB,
      run: run ?? newJobRun(),
      parent,
      open: false,
      tail: IDLE_TAIL,
      blocked: false,
      unblockWaiters: [],
      afterCommit: [],
      held,
      // The job's own transaction; a re-entrant call's and a batch member's savepoint set their own.
      baseDepth: 1,
    };
  }

  /**
   * A re-entrant call: once the statements its level already started have settled, a savepoint
   * that only the call's own statements reach (the level's others wait), released when the work
   * returns, rolled back when it throws.
   */
  private async runChild<T>(frame: Frame, work: WriteWork<T>): Promise<T> {
    const { writer, run } = frame;
    frame.blocked = true;
    try {
      await whenQuiet(run);
      await admitStep(run, () => writer.original.startTransaction());
      const child = this.newFrame(writer, frame, undefined, run);
      child.job = frame.job;
      child.open = true;
      child.baseDepth = writer.depth; // its own level: a commitTransaction() at it is refused
      let result: T;
      try {
        result = await frames.run(child, () => work(writer.manager, frame.job));
        await settled(child);
        if (writer.depth !== child.baseDepth) throw levelsLeftOpenInCall(frame.job.jobId);
      } catch (error) {
        child.open = false;
        // The work's error matters to the caller; the job's own rollback cleans up after a failure here.
        await admitStep(run, () => rollbackTo(writer, child.baseDepth)).catch(() => undefined);
        throw error;
      }
      child.open = false;
      await admitStep(run, () => writer.original.commitTransaction());
      frame.afterCommit.push(...child.afterCommit);
      return result;
    } finally {
      unblock(frame);
    }
  }

  /**
   * Why a raw statement of the job whose own level is `frame` may not run now, if it may not: its
   * job ended, or it is used at a level whose re-entrant call holds a savepoint (it would land in
   * that savepoint).
   */
  private rawStatementProblem(frame: Frame): string | undefined {
    if (!frame.open || frame.run.abandoned !== undefined) {
      return 'a raw statement was used after its job ended (it would run outside any transaction)';
    }
    if (!frame.blocked) return undefined;
    const current = this.frame();
    if (current?.run === frame.run && !current.blocked) return undefined;
    return 'a raw statement was used while a re-entrant call of the same level had its savepoint open; await that call first';
  }

  private async runWithoutTransaction<T>(frame: Frame, work: WriteWork<T>): Promise<T> {
    frame.open = true;
    let result: T;
    try {
      result = await frames.run(frame, () => work(frame.writer.manager, frame.job));
    } finally {
      frame.open = false;
    }
    runAfterCommit(frame.afterCommit, this.hooks);
    return result;
  }
}
