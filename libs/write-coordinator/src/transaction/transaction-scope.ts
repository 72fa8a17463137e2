import { BusyError, InternalError, TimeoutError, WriteCoordinatorError } from '../errors';
import { HeldTransaction } from './held-transaction';
import {
  admit,
  admitStep,
  Frame,
  frames,
  IDLE_TAIL,
  JobRun,
  newJobRun,
  NO_JOB,
  unblock,
  whenQuiet,
  WriteWork,
} from './job-frame';
import { isBusy, sqliteCode } from '../sqlite/sqlite-error';
import type { WriterConnection } from './writer-connection';
import type { JobContext, TakenJob } from '../queue/write-queue';

export type { WriteJob, WriteWork } from './job-frame';

/** @internal Group commit: how a running job takes the queued jobs that follow it into its transaction. */
export interface Batching {
  /** Most jobs per transaction; 1 turns group commit off. */
  readonly maxSize: number;
  /** The next queued batchable job, or undefined. */
  take(): TakenJob | undefined;
  /** How long the batch may wait for more jobs once the queue is empty (ms); 0: not at all. */
  readonly waitMs: number;
  /** Resolves when a job is queued, or after `ms`. */
  whenArrival(ms: number): Promise<void>;
}

/** The batch a leading job has open. */
interface Batch {
  /** Frames of the members that released their savepoint, the leader's first. */
  readonly members: Frame[];
  /** The member whose savepoint is open now. */
  current: Frame | undefined;
  /** Earliest deadline of the members waiting for the COMMIT (`performance.now()` time). */
  deadlineAt: number;
}

/** What a follower of a batch came to: its value, or the error it fails with. */
type FollowerOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** How {@link TransactionScope.runJob} runs a job. */
export interface JobMode {
  /** False for statements that must run outside any transaction (PRAGMA, VACUUM). Default true. */
  transactional?: boolean;
  /** A frame prepared before the job started (a held transaction's). */
  frame?: Frame;
}

/** What a scope tells its coordinator about the jobs it runs. */
export interface ScopeHooks {
  /** An after-commit callback threw (it never fails the job). */
  afterCommitError(error: unknown): void;
  /** A transaction of `size` jobs committed (1 without group commit). */
  committed(size: number): void;
  /** A job ended without commit, with this error. */
  failed(error: unknown): void;
}

/** Least time kept for a batch's COMMIT before the deadline of a member waiting for it. */
const MIN_COMMIT_MARGIN_MS = 2;

/** The reason a job's function returns early when its caller was answered before it started. */
const ALREADY_ANSWERED = new InternalError('the job was answered before its work started; it did not run');

/**
 * @internal Runs a coordinator's work in transactions: a top-level job gets its own transaction
 * (or a savepoint in a group-commit batch), a re-entrant call a savepoint inside the enclosing
 * job's transaction. Frames are tagged with their scope, so that coordinators of several
 * DataSources never see each other's jobs.
 */
export class TransactionScope {
  /** The open batch while a leading job runs (one at a time: the queue has one drain). */
  private batch: Batch | undefined;
  /** How long the last COMMIT took (ms): a batch keeps at least twice that for its COMMIT. */
  private lastCommitMs = 0;

  constructor(
    private readonly hooks: ScopeHooks,
    /** Group commit: how a running job takes the jobs queued behind it. */
    private readonly batching: Batching,
  ) {}

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
    if (this.batch) return this.runMember(writer, ctx, frame, work, this.batch);
    if (this.batching.maxSize > 1 && !mode.frame) {
      return this.runBatch(writer, ctx, frame, work, this.batching);
    }
    await this.begin(writer, ctx);
    frame.open = true;
    try {
      const result = await frames.run(frame, () => work(writer.manager, frame.job));
      await settled(frame); // re-entrant calls and statements the work did not await are part of the job
      if (!ctx.claimCommit()) throw ctx.signal.reason;
      try {
        // Still inside the frame: subscribers' BeforeTransactionCommit writes join the transaction.
        await frames.run(frame, () => writer.original.commitTransaction());
      } catch (error) {
        // A held transaction's COMMIT is its caller's own commitTransaction(): TypeORM's error, as is.
        throw frame.held ? error : ownFailure('could not commit its transaction; nothing was written', error, ctx);
      }
      frame.open = false;
      if (writer.inTransaction) throw levelsLeftOpen(ctx);
      this.hooks.committed(1);
      this.runAfterCommit(frame.afterCommit);
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
      // A re-entrant call's level belongs to the same job: the job's own level stays its parent's.
      baseDepth: parent?.scope === this && parent.open ? parent.baseDepth : 1,
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
        await admitStep(run, () => this.rollbackTo(writer, child.baseDepth)).catch(() => undefined);
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

  /**
   * Group commit, as the leading job: BEGIN IMMEDIATE, its own work in a savepoint, then the queued
   * batchable jobs behind it (each in its own savepoint, up to `maxSize` in all), then one COMMIT.
   * A member that throws rolls back only its savepoint and fails at once; the others are settled
   * only after the COMMIT succeeded; a failed COMMIT fails every member of the batch. A leader
   * whose own work throws ends the transaction at once (the queued jobs form the next batch).
   */
  private async runBatch<T>(
    writer: WriterConnection,
    ctx: JobContext,
    frame: Frame,
    work: WriteWork<T>,
    batching: Batching,
  ): Promise<T> {
    await this.begin(writer, ctx);
    const batch: Batch = { members: [], current: undefined, deadlineAt: Infinity };
    const followers: Array<{ taken: TakenJob; value: unknown }> = [];
    let value: T;
    this.batch = batch;
    try {
      try {
        value = await this.runMember(writer, ctx, frame, work, batch);
      } catch (error) {
        await this.endBatch(writer, ctx, frame, 0);
        throw error;
      }
      batch.deadlineAt = ctx.deadlineAt ?? Infinity;
      await this.takeFollowers(writer, batch, batching, followers);
    } finally {
      this.batch = undefined;
    }

    const failure = await this.endBatch(writer, ctx, frame, batch.members.length);
    if (failure !== undefined) {
      // Nothing of the batch was written: fail every member that was waiting for the COMMIT.
      for (const { taken } of followers) taken.fail(failure);
      throw failure;
    }
    for (const member of batch.members) this.runAfterCommit(member.afterCommit);
    for (const { taken, value } of followers) taken.complete(value);
    return value;
  }

  /**
   * Runs the queued batchable jobs after the leader's own work, one at a time, until the batch is
   * full, the queue stays empty past `waitMs`, or a member waiting for the COMMIT would otherwise
   * be answered after its deadline.
   */
  private async takeFollowers(
    writer: WriterConnection,
    batch: Batch,
    batching: Batching,
    followers: Array<{ taken: TakenJob; value: unknown }>,
  ): Promise<void> {
    const waitUntil = performance.now() + batching.waitMs;
    for (let ran = 1; ran < batching.maxSize && writer.inTransaction;) {
      const commitBy = batch.deadlineAt - this.commitMargin();
      const taken = performance.now() < commitBy ? batching.take() : undefined;
      if (!taken) {
        const left = Math.min(waitUntil, commitBy) - performance.now();
        if (left <= 0) return;
        await batching.whenArrival(left);
        continue;
      }
      ran++;
      const outcome = await this.runFollower(writer, batch, taken);
      if (!outcome.ok) {
        taken.fail(outcome.error);
        continue;
      }
      followers.push({ taken, value: outcome.value });
      if (taken.deadlineAt !== undefined && taken.deadlineAt < batch.deadlineAt) batch.deadlineAt = taken.deadlineAt;
    }
  }

  /**
   * Runs one follower. The batch stops waiting for it when its caller is answered early (its
   * deadline, its signal, shutdown) or when a member waiting for the COMMIT must be answered: the
   * follower is then abandoned (see {@link abandonMember}) and fails, the others commit on time.
   */
  private runFollower(writer: WriterConnection, batch: Batch, taken: TakenJob): Promise<FollowerOutcome> {
    return new Promise<FollowerOutcome>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined = undefined;
      let decided = false;
      const decide = (outcome: FollowerOutcome, abandon: boolean) => {
        if (decided) return;
        decided = true;
        if (timer !== undefined) clearTimeout(timer);
        if (!abandon) return resolve(outcome);
        void this.abandonMember(writer, batch, (outcome as { error: unknown }).error).then(() => resolve(outcome));
      };
      taken.run().then(
        (value) => decide({ ok: true, value }, false),
        (error: unknown) => decide({ ok: false, error }, false),
      );
      taken.onEndedEarly((error) => decide({ ok: false, error }, true));
      const commitBy = batch.deadlineAt - this.commitMargin();
      if (commitBy === Infinity) return;
      timer = setTimeout(
        () => {
          // As for its own deadline: caller rejected, signal aborted, counted as timed out; that
          // ends it early, which abandons it (onEndedEarly above).
          taken.timeOut(
            new TimeoutError(
              'its batch had to commit to answer an earlier job of the batch before that job’s deadline; ' +
                'it was rolled back before its work finished, nothing was written',
              { jobId: taken.jobId, label: taken.label },
            ),
          );
        },
        Math.max(0, commitBy - performance.now()),
      );
    });
  }

  /**
   * Gives up the follower whose savepoint is open: its later statements are refused, the ones it
   * has in flight settle, then every level it opened is rolled back. Its work may go on running;
   * nothing it does can reach the batch any more. A follower that had not started yet never will
   * (its job was answered, see `runMember`).
   */
  private async abandonMember(writer: WriterConnection, batch: Batch, reason: unknown): Promise<void> {
    const member = batch.current;
    if (member === undefined) return;
    batch.current = undefined;
    member.run.abandoned = reason;
    member.open = false;
    await whenQuiet(member.run);
    await this.rollbackLevels(writer, member).catch(() => undefined); // the leader checks the transaction
  }

  /**
   * Ends a batch: COMMIT when members released their savepoints, else ROLLBACK of the empty
   * transaction; either way TypeORM's runner is left in line with the connection.
   * @returns undefined once committed (or when there was nothing to commit), or the error every
   *   waiting member must fail with.
   */
  private async endBatch(writer: WriterConnection, ctx: JobContext, frame: Frame, size: number): Promise<unknown> {
    let failure: unknown;
    try {
      if (size === 0) {
        await writer.rollbackIfOpen();
        return undefined;
      }
      if (!writer.inTransaction) {
        failure = ownFailure(
          `lost its batch transaction (SQLite rolled it back); none of its ${size} job(s) was written`,
          undefined,
          ctx,
        );
      } else {
        // In the leading job's frame: subscribers' BeforeTransactionCommit writes join the batch.
        frame.open = true;
        const started = performance.now();
        try {
          await frames.run(frame, () => writer.original.commitTransaction());
          this.lastCommitMs = performance.now() - started;
        } catch (error) {
          failure = ownFailure(`could not commit its batch; none of its ${size} job(s) was written`, error, ctx);
        } finally {
          frame.open = false;
        }
      }
      if (failure === undefined) {
        this.hooks.committed(size);
        return undefined;
      }
      this.hooks.failed(failure);
      await writer.rollbackIfOpen();
      return failure;
    } finally {
      await writer.resync();
    }
  }

  /**
   * One job of a batch: its work in a savepoint of the batch transaction. Released (and recorded
   * as a member) when the work returns and the job may still commit; rolled back otherwise.
   */
  private async runMember<T>(
    writer: WriterConnection,
    ctx: JobContext,
    frame: Frame,
    work: WriteWork<T>,
    batch: Batch,
  ): Promise<T> {
    // Its caller was answered while it waited to start (the batch stopped waiting for it).
    if (ctx.ended) throw ALREADY_ANSWERED;
    try {
      writer.openSavepoint();
    } catch (error) {
      this.hooks.failed(error);
      throw ownFailure('could not open its savepoint', error, ctx);
    }
    frame.baseDepth = writer.depth;
    frame.open = true;
    batch.current = frame;
    try {
      const result = await frames.run(frame, () => work(writer.manager, frame.job));
      await settled(frame); // re-entrant calls and statements the work did not await are part of the job
      if (frame.run.abandoned !== undefined) throw frame.run.abandoned;
      if (writer.depth !== frame.baseDepth) throw levelsLeftOpen(ctx);
      if (!ctx.claimCommit()) throw ctx.signal.reason;
      writer.releaseSavepoint();
      frame.open = false;
      batch.current = undefined;
      batch.members.push(frame);
      return result;
    } catch (error) {
      frame.open = false;
      // Abandoned: the leader rolled it back already, and the connection may serve another job now.
      if (frame.run.abandoned !== undefined) throw error;
      batch.current = undefined;
      this.hooks.failed(error);
      await this.rollbackLevels(writer, frame).catch(() => undefined); // the leader checks the transaction
      throw error;
    }
  }

  /** Rolls back the levels above `depth` (TypeORM's own, opened by hand), then the savepoint at `depth`. */
  private async rollbackTo(writer: WriterConnection, depth: number): Promise<void> {
    while (writer.runner.isTransactionActive && writer.depth > depth) await writer.original.rollbackTransaction();
    if (writer.depth === depth && writer.runner.isTransactionActive) await writer.original.rollbackTransaction();
  }

  /** Rolls back the levels a member's work left open (TypeORM's own), then the member's savepoint. */
  private async rollbackLevels(writer: WriterConnection, frame: Frame): Promise<void> {
    while (writer.runner.isTransactionActive && writer.depth > frame.baseDepth)
      await writer.original.rollbackTransaction();
    if (writer.depth === frame.baseDepth && writer.inTransaction) writer.rollbackSavepoint();
  }

  /** Time kept for a batch's COMMIT before a waiting member's deadline. */
  private commitMargin(): number {
    return Math.max(MIN_COMMIT_MARGIN_MS, 2 * this.lastCommitMs);
  }

  private async runWithoutTransaction<T>(frame: Frame, work: WriteWork<T>): Promise<T> {
    frame.open = true;
    let result: T;
    try {
      result = await frames.run(frame, () => work(frame.writer.manager, frame.job));
    } finally {
      frame.open = false;
    }
    this.runAfterCommit(frame.afterCommit);
    return result;
  }

  /** BEGIN IMMEDIATE for a job (within the busy budget); a failure becomes the job's error. */
  private async begin(writer: WriterConnection, ctx: JobContext): Promise<void> {
    try {
      await writer.begin(ctx);
    } catch (error) {
      this.hooks.failed(error);
      throw error === ctx.signal.reason ? error : ownFailure('could not begin its transaction', error, ctx);
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

/** A job level's re-entrant calls (chained on its `tail`) and in-flight statements, once settled. */
async function settled(frame: Frame): Promise<void> {
  while (frame.tail !== IDLE_TAIL) {
    const tail = frame.tail;
    await tail;
    if (frame.tail === tail) break; // no call started meanwhile
  }
  if (frame.run.inFlight > 0) await whenQuiet(frame.run);
}

function levelsLeftOpenInCall(jobId: string): WriteCoordinatorError {
  return new InternalError(
    'a re-entrant call left transaction levels open (a startTransaction() without commit) or ended its ' +
      'own savepoint (a commitTransaction()/rollbackTransaction() at its level); it was rolled back',
    { jobId },
  );
}

function levelsLeftOpen(ctx: JobContext): WriteCoordinatorError {
  return ownFailure(
    'left transaction levels open (a startTransaction() without commit); nothing was written',
    undefined,
    ctx,
  );
}

function ownFailure(what: string, error: unknown, ctx: JobContext): WriteCoordinatorError {
  const options = { cause: error, jobId: ctx.jobId, label: ctx.label };
  const detail = error === undefined ? what : `${what} (${error instanceof Error ? error.message : String(error)})`;
  return isBusy(sqliteCode(error)) ? new BusyError(detail, options) : new InternalError(detail, options);
}
