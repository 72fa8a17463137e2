import { InternalError, TimeoutError } from '../errors';
import type { BatchYield } from '../core/coordinator-options';
import type { JobContext, TakenJob } from '../queue/queue.types';
import { BatchYieldPolicy } from './batch-yield';
import { Frame, frames, whenQuiet } from './job-frame';
import { beginJob, levelsLeftOpen, ownFailure, runAfterCommit, ScopeHooks, settled } from './job-steps';
import type { WriteWork } from './write-job';
import type { WriterConnection } from './writer-connection';

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
  /** Whether a batch lets the event loop run before its COMMIT when the queue is empty (`batchYield`). */
  readonly yieldMode: BatchYield;
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

/**
 * Most times a batch lets the event loop run before its COMMIT. Requests waiting on sockets all
 * arrive in the first turn; later turns catch stragglers, and jobs that trickle in one by one
 * (from promise chains) would otherwise cost a turn each.
 */
const MAX_YIELDS_PER_BATCH = 2;

/** Least time kept for a batch's COMMIT before the deadline of a member waiting for it. */
const MIN_COMMIT_MARGIN_MS = 2;

/** The reason a job's function returns early when its caller was answered before it started. */
const ALREADY_ANSWERED = new InternalError('the job was answered before its work started; it did not run');

/**
 * @internal Group commit: the running job (the leader) runs its own work in the transaction itself, then takes
 * the batchable jobs queued behind it, each in its own savepoint, then one COMMIT for all. One
 * batch at a time: the queue has one drain.
 */
export class GroupCommit {
  /** The open batch while a leading job runs. */
  private batch: Batch | undefined;
  /** How long the last COMMIT took (ms): a batch keeps at least twice that for its COMMIT. */
  private lastCommitMs = 0;
  /** Whether an empty queue gets one turn of the event loop before the COMMIT. */
  private readonly yields: BatchYieldPolicy;

  constructor(
    private readonly hooks: ScopeHooks,
    private readonly batching: Batching,
  ) {
    this.yields = new BatchYieldPolicy(batching.yieldMode);
  }

  /** True when group commit is on (`maxBatchSize` > 1). */
  get enabled(): boolean {
    return this.batching.maxSize > 1;
  }

  /** True while a batch is open: a job that starts now is one of its members. */
  get isOpen(): boolean {
    return this.batch !== undefined;
  }

  /** Runs a job as a member of the open batch (see {@link isOpen}). */
  member<T>(writer: WriterConnection, ctx: JobContext, frame: Frame, work: WriteWork<T>): Promise<T> {
    return this.runMember(writer, ctx, frame, work, this.batch!);
  }

  /**
   * Group commit, as the leading job: BEGIN IMMEDIATE, its own work (no savepoint), then the queued
   * batchable jobs behind it (each in its own savepoint, up to `maxSize` in all), then one COMMIT.
   * A member that throws rolls back only its savepoint and fails at once; the others are settled
   * only after the COMMIT succeeded; a failed COMMIT fails every member of the batch. A leader
   * whose own work throws ends the transaction at once (the queued jobs form the next batch).
   */
  async lead<T>(writer: WriterConnection, ctx: JobContext, frame: Frame, work: WriteWork<T>): Promise<T> {
    await beginJob(writer, ctx, this.hooks);
    const batch: Batch = { members: [], current: undefined, deadlineAt: Infinity };
    const followers: Array<{ taken: TakenJob; value: unknown }> = [];
    let value: T;
    this.batch = batch;
    try {
      try {
        value = await this.runMember(writer, ctx, frame, work, batch, true);
      } catch (error) {
        await this.endBatch(writer, ctx, frame, 0);
        throw error;
      }
      batch.deadlineAt = ctx.deadlineAt ?? Infinity;
      await this.takeFollowers(writer, batch, followers);
    } finally {
      this.batch = undefined;
    }

    const failure = await this.endBatch(writer, ctx, frame, batch.members.length);
    if (failure !== undefined) {
      // Nothing of the batch was written: fail every member that was waiting for the COMMIT.
      for (const { taken } of followers) taken.fail(failure);
      throw failure;
    }
    for (const member of batch.members) runAfterCommit(member.afterCommit, this.hooks);
    for (const { taken, value } of followers) taken.complete(value);
    return value;
  }

  /**
   * Runs the queued batchable jobs after the leader's own work, one at a time, until the batch is
   * full, the queue stays empty past `waitMs`, or a member waiting for the COMMIT would otherwise
   * be answered after its deadline. When the queue is empty it first lets the event loop run
   * once, if `batchYield` says so (see {@link BatchYieldPolicy}), and once more if that yield
   * brought jobs: requests that arrived over the network meanwhile join the batch.
   */
  private async takeFollowers(
    writer: WriterConnection,
    batch: Batch,
    followers: Array<{ taken: TakenJob; value: unknown }>,
  ): Promise<void> {
    const batching = this.batching;
    const waitUntil = performance.now() + batching.waitMs;
    let mayYield = true;
    let yields = 0;
    for (let ran = 1; ran < batching.maxSize && writer.inTransaction;) {
      const commitBy = batch.deadlineAt - this.commitMargin();
      const taken = performance.now() < commitBy ? batching.take() : undefined;
      this.yields.yielded(taken !== undefined);
      if (!taken) {
        if (mayYield && yields < MAX_YIELDS_PER_BATCH && this.yields.worthIt(commitBy - performance.now())) {
          mayYield = false;
          yields++;
          await this.yields.yield();
          continue;
        }
        const left = Math.min(waitUntil, commitBy) - performance.now();
        if (left <= 0) return;
        await batching.whenArrival(left);
        continue;
      }
      mayYield = true;
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
          this.yields.committed(this.lastCommitMs);
        } catch (error) {
          failure = ownFailure(`could not commit its batch; none of its ${size} job(s) was written`, error, ctx);
        } finally {
          frame.open = false;
        }
      }
      if (failure === undefined) {
        this.hooks.committed(size, this.lastCommitMs);
        return undefined;
      }
      this.hooks.failed(failure);
      await writer.rollbackIfOpen();
      return failure;
    } finally {
      if (!writer.inStep) await writer.resync();
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
    leader = false,
  ): Promise<T> {
    // Its caller was answered while it waited to start (the batch stopped waiting for it).
    if (ctx.ended) throw ALREADY_ANSWERED;
    // The leader needs no savepoint: nothing else is in the transaction yet, and when its work
    // fails the whole transaction is rolled back (`lead`); a lone job then costs BEGIN, its
    // statements and COMMIT, as without group commit.
    if (!leader) {
      try {
        writer.openSavepoint();
      } catch (error) {
        this.hooks.failed(error);
        throw ownFailure('could not open its savepoint', error, ctx);
      }
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
      if (!leader) writer.releaseSavepoint();
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
      // A follower rolls back its savepoint; a leader's caller rolls back the whole transaction.
      if (!leader) await this.rollbackLevels(writer, frame).catch(() => undefined); // the leader checks it
      throw error;
    }
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
}
