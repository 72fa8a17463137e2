import { AsyncLocalStorage } from 'node:async_hooks';
import type { HeldTransaction } from './held-transaction';
import type { WriteJob } from './write-job';
import type { WriterConnection } from './writer-connection';

/**
 * @internal What every level of one job shares (its own level and the savepoints of its
 * re-entrant calls): the statements it has in flight, and whether it was abandoned.
 */
export interface JobRun {
  /** Statements (and savepoint steps) of this job that started and have not settled yet. */
  inFlight: number;
  /** Resolved when `inFlight` drops to 0. */
  quietWaiters: Array<() => void>;
  /**
   * Set when the job was given up while its work still ran (a batch could not wait for it): its
   * levels were rolled back by the coordinator, and every later statement of it is refused with
   * this error, so that nothing it does afterwards can land in another job's transaction.
   */
  abandoned: unknown;
  /** Settles one in-flight statement and passes its value on (made once per job, not per statement). */
  readonly passValue: <T>(value: T) => T;
  /** Settles one in-flight statement and rethrows its error. */
  readonly passError: (error: unknown) => never;
}

/**
 * @internal One transaction level of a running job: the top-level transaction, or a savepoint of
 * a re-entrant call. Stored in AsyncLocalStorage so that calls made from inside the job find it.
 */
export interface Frame {
  /** The scope (one per coordinator) whose job this level belongs to. */
  readonly scope: object;
  readonly writer: WriterConnection;
  job: WriteJob;
  run: JobRun;
  readonly parent: Frame | undefined;
  /** True while this level's transaction or savepoint is open (late async calls then queue). */
  open: boolean;
  /** Serialises re-entrant calls made concurrently from this level: savepoints must nest. */
  tail: Promise<unknown>;
  /**
   * True while a re-entrant call of this level opens or holds its savepoint: statements of this
   * level wait meanwhile, else they would land in that savepoint and share its fate.
   */
  blocked: boolean;
  /** Statements of this level waiting for `blocked` to clear. */
  unblockWaiters: Array<() => void>;
  /** Run after the top-level COMMIT, in order; discarded on rollback. */
  afterCommit: Array<() => void>;
  /** Set when the level is a transaction its caller opened with `queryRunner.startTransaction()`. */
  readonly held?: HeldTransaction;
  /** TypeORM depth of the job's own level: 1 for its transaction, 2 for its savepoint in a batch. */
  baseDepth: number;
}

/** @internal A frame's `tail` while none of its re-entrant calls ever ran. */
export const IDLE_TAIL: Promise<unknown> = Promise.resolve();

/** @internal The frames of running jobs, by async context. */
export const frames = new AsyncLocalStorage<Frame>();

/** @internal Placeholder until a frame's job starts. */
export const NO_JOB: WriteJob = Object.freeze({
  jobId: '',
  signal: new AbortController().signal,
  statement(): never {
    throw new Error('no job is running');
  },
});

/** @internal A fresh {@link JobRun}. */
export function newJobRun(): JobRun {
  const run: JobRun = {
    inFlight: 0,
    quietWaiters: [],
    abandoned: undefined,
    passValue: (value) => {
      settleOne(run);
      return value;
    },
    passError: (error) => {
      settleOne(run);
      throw error;
    },
  };
  return run;
}

/**
 * @internal Runs one statement of `frame`'s level: refused once the job was abandoned, counted
 * while in flight (see {@link whenQuiet}), and, when it writes, held back while a re-entrant call
 * of the same level has its savepoint open (a ROLLBACK TO SAVEPOINT would erase it). A read is
 * never held back: nothing can erase it, and a re-entrant call may be waiting for it (a memoised
 * read the call awaits would otherwise wait for the call: a deadlock).
 */
export function admit<T>(frame: Frame, step: () => Promise<T>, reads = false): Promise<T> {
  if (frame.blocked && !reads && frame.run.abandoned === undefined) {
    return new Promise<void>((resolve) => frame.unblockWaiters.push(resolve)).then(() => admit(frame, step));
  }
  return admitStep(frame.run, step);
}

/**
 * @internal Runs one step of a job whatever its level's state (the coordinator's own savepoint
 * steps): refused once the job was abandoned, counted while in flight.
 */
export function admitStep<T>(run: JobRun, step: () => Promise<T>): Promise<T> {
  if (run.abandoned !== undefined) return Promise.reject(run.abandoned);
  run.inFlight++;
  let result: Promise<T>;
  try {
    result = step();
  } catch (error) {
    settleOne(run);
    return Promise.reject(error);
  }
  return result.then(run.passValue, run.passError);
}

/** @internal Resolves once no statement of the job is in flight. */
export function whenQuiet(run: JobRun): Promise<void> {
  if (run.inFlight === 0) return Promise.resolve();
  return new Promise((resolve) => run.quietWaiters.push(resolve));
}

/** @internal Lets the statements held back by {@link Frame.blocked} go on. */
export function unblock(frame: Frame): void {
  frame.blocked = false;
  const waiters = frame.unblockWaiters;
  frame.unblockWaiters = [];
  for (const resume of waiters) resume();
}

/** One statement of the job settled; wakes {@link whenQuiet} callers when none is left. */
function settleOne(run: JobRun): void {
  if (--run.inFlight !== 0 || run.quietWaiters.length === 0) return;
  const waiters = run.quietWaiters;
  run.quietWaiters = [];
  for (const resume of waiters) resume();
}
