import { AsyncLocalStorage } from 'node:async_hooks';
import type { EntityManager } from 'typeorm';
import { BusyError, InternalError, WriteCoordinatorError } from './errors';
import { HeldTransaction } from './held-transaction';
import { isBusy, sqliteCode } from './sqlite-error';
import type { RawStatement } from './raw-statements';
import type { WriterGate } from './writer-gate';
import type { JobContext, TakenJob } from './write-queue';

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
  /** TypeORM depth of the job's own level: 1 for its transaction, 2 for its savepoint in a batch. */
  baseDepth: number;
}

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

/** The batch a leading job has open: the frames of its members that released their savepoint. */
interface Batch {
  readonly members: Frame[];
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
  /** A transaction of `size` jobs committed (1 without group commit). */
  committed(size: number): void;
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
  /** Group commit settings, once the coordinator is attached. */
  batching: Batching | undefined;
  /** The open batch while a leading job runs (one at a time: the queue has one drain). */
  private batch: Batch | undefined;

  constructor(
    private readonly owner: object,
    private readonly hooks: ScopeHooks,
  ) {}

  /** TypeORM depth of the current job's own level (see {@link Frame.baseDepth}), if inside one. */
  get jobBaseDepth(): number | undefined {
    return this.frame()?.baseDepth;
  }

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
      get signal() {
        return ctx.signal; // created on first use: most jobs never look at it
      },
      statement: (sql) => gate.statements.statement(sql, () => frame.open, ctx.jobId),
    };
    frame.job = job;
    if (mode.transactional === false) return this.runWithoutTransaction(frame, work);
    if (this.batch) return this.runMember(gate, ctx, frame, work, this.batch);
    if (this.batching && this.batching.maxSize > 1 && !mode.frame) {
      return this.runBatch(gate, ctx, frame, work, this.batching);
    }
    await this.begin(gate, ctx);
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
      if (gate.inTransaction) throw levelsLeftOpen(ctx);
      this.hooks.committed(1);
      this.runAfterCommit(frame.afterCommit);
      return result;
    } catch (error) {
      frame.open = false;
      this.hooks.failed(error);
      await gate.rollbackIfOpen(); // SQLite may have ended the transaction itself
      await gate.resync();
      throw error;
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
  heldTransaction(): { held: HeldTransaction; open: boolean } | undefined {
    for (let f = storage.getStore(); f; f = f.parent) {
      if (f.owner !== this.owner) continue;
      if (f.held && !f.held.endedByCaller) return { held: f.held, open: f.open };
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
      // A re-entrant call's level belongs to the same job: the job's own level stays its parent's.
      baseDepth: parent?.owner === this.owner && parent.open ? parent.baseDepth : 1,
    };
  }

  /**
   * Group commit, as the leading job: BEGIN IMMEDIATE, its own work in a savepoint, then the queued
   * batchable jobs behind it (each in its own savepoint, up to `maxSize` in all), then one COMMIT.
   * A member that throws rolls back only its savepoint and fails at once; the others are settled
   * only after the COMMIT succeeded; a failed COMMIT fails every member of the batch.
   */
  private async runBatch<T>(
    gate: WriterGate,
    ctx: JobContext,
    frame: Frame,
    work: WriteWork<T>,
    batching: Batching,
  ): Promise<T> {
    await this.begin(gate, ctx);
    const batch: Batch = { members: [] };
    const followers: Array<{ taken: TakenJob; value: unknown }> = [];
    let own: { ok: true; value: T } | { ok: false; error: unknown };
    let ran = 1;
    this.batch = batch;
    try {
      try {
        own = { ok: true, value: await this.runMember(gate, ctx, frame, work, batch) };
      } catch (error) {
        own = { ok: false, error };
      }
      const waitUntil = performance.now() + batching.waitMs;
      while (ran < batching.maxSize && gate.inTransaction) {
        const taken = batching.take();
        if (!taken) {
          const left = waitUntil - performance.now();
          if (left <= 0) break;
          await batching.whenArrival(left);
          continue;
        }
        ran++;
        try {
          followers.push({ taken, value: await taken.run() });
        } catch (error) {
          taken.fail(error);
        }
      }
    } finally {
      this.batch = undefined;
    }

    const committed = await this.endBatch(gate, ctx, frame, batch.members.length);
    if (committed !== undefined) {
      // Nothing of the batch was written: fail every member that was waiting for the COMMIT.
      for (const { taken } of followers) taken.fail(committed);
      throw own.ok ? committed : own.error;
    }
    for (const member of batch.members) this.runAfterCommit(member.afterCommit);
    for (const { taken, value } of followers) taken.complete(value);
    if (own.ok) return own.value;
    throw own.error;
  }

  /**
   * Ends a batch: COMMIT when members released their savepoints, else ROLLBACK of the empty
   * transaction; either way TypeORM's runner is left in line with the connection.
   * @returns undefined once committed (or when there was nothing to commit), or the error every
   *   waiting member must fail with.
   */
  private async endBatch(gate: WriterGate, ctx: JobContext, frame: Frame, size: number): Promise<unknown> {
    let failure: unknown;
    try {
      if (size === 0) {
        await gate.rollbackIfOpen();
        return undefined;
      }
      if (!gate.inTransaction) {
        failure = ownFailure(
          `lost its batch transaction (SQLite rolled it back); none of its ${size} job(s) was written`,
          undefined,
          ctx,
        );
      } else {
        // In the leading job's frame: subscribers' BeforeTransactionCommit writes join the batch.
        frame.open = true;
        try {
          await storage.run(frame, () => gate.original.commitTransaction());
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
      await gate.rollbackIfOpen();
      return failure;
    } finally {
      await gate.resync();
    }
  }

  /**
   * One job of a batch: its work in a savepoint of the batch transaction. Released (and recorded
   * as a member) when the work returns and the job may still commit; rolled back otherwise.
   */
  private async runMember<T>(
    gate: WriterGate,
    ctx: JobContext,
    frame: Frame,
    work: WriteWork<T>,
    batch: Batch,
  ): Promise<T> {
    try {
      gate.openSavepoint();
    } catch (error) {
      this.hooks.failed(error);
      throw ownFailure('could not open its savepoint', error, ctx);
    }
    frame.baseDepth = gate.depth;
    frame.open = true;
    try {
      const result = await storage.run(frame, () => work(gate.manager, frame.job));
      if (gate.depth !== frame.baseDepth) throw levelsLeftOpen(ctx);
      if (!ctx.claimCommit()) throw ctx.signal.reason;
      gate.releaseSavepoint();
      frame.open = false;
      batch.members.push(frame);
      return result;
    } catch (error) {
      frame.open = false;
      this.hooks.failed(error);
      try {
        // Levels the work left open first (TypeORM's own), then the job's savepoint.
        while (gate.runner.isTransactionActive && gate.depth > frame.baseDepth)
          await gate.original.rollbackTransaction();
        if (gate.depth === frame.baseDepth && gate.inTransaction) gate.rollbackSavepoint();
      } catch {
        // SQLite may have ended the whole transaction; the leader checks before going on.
      }
      throw error;
    }
  }

  private async runWithoutTransaction<T>(frame: Frame, work: WriteWork<T>): Promise<T> {
    frame.open = true;
    let result: T;
    try {
      result = await storage.run(frame, () => work(frame.gate.manager, frame.job));
    } finally {
      frame.open = false;
    }
    this.runAfterCommit(frame.afterCommit);
    return result;
  }

  /** BEGIN IMMEDIATE for a job (within the busy budget); a failure becomes the job's error. */
  private async begin(gate: WriterGate, ctx: JobContext): Promise<void> {
    try {
      await gate.begin(ctx);
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
