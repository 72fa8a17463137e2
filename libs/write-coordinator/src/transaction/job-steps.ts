import { BusyError, InternalError, WriteCoordinatorError } from '../errors';
import type { JobContext } from '../queue/queue.types';
import { isBusy, sqliteCode } from '../sqlite/sqlite-error';
import { Frame, IDLE_TAIL, whenQuiet } from './job-frame';
import type { WriterConnection } from './writer-connection';

/** @internal What the transaction layer tells its coordinator about the jobs it runs. */
export interface ScopeHooks {
  /** An after-commit callback threw (it never fails the job). */
  afterCommitError(error: unknown): void;
  /** A transaction of `size` jobs committed (1 without group commit); its COMMIT took `commitMs`. */
  committed(size: number, commitMs: number): void;
  /** A job ended without commit, with this error. */
  failed(error: unknown): void;
}

/** @internal BEGIN IMMEDIATE for a job (within the busy budget); a failure becomes the job's error. */
export async function beginJob(writer: WriterConnection, ctx: JobContext, hooks: ScopeHooks): Promise<void> {
  try {
    await writer.begin(ctx);
  } catch (error) {
    hooks.failed(error);
    throw error === ctx.signal.reason ? error : ownFailure('could not begin its transaction', error, ctx);
  }
}

/** @internal Runs after-commit callbacks in order; one that throws is reported and never fails the job. */
export function runAfterCommit(callbacks: Array<() => void>, hooks: ScopeHooks): void {
  for (const callback of callbacks) {
    try {
      callback();
    } catch (error) {
      hooks.afterCommitError(error);
    }
  }
}

/** @internal Resolves once a level's re-entrant calls (chained on its `tail`) and in-flight statements settled. */
export async function settled(frame: Frame): Promise<void> {
  while (frame.tail !== IDLE_TAIL) {
    const tail = frame.tail;
    await tail;
    if (frame.tail === tail) break; // no call started meanwhile
  }
  if (frame.run.inFlight > 0) await whenQuiet(frame.run);
}

/** @internal Rolls back the levels above `depth` (TypeORM's own, opened by hand), then the savepoint at `depth`. */
export async function rollbackTo(writer: WriterConnection, depth: number): Promise<void> {
  while (writer.runner.isTransactionActive && writer.depth > depth) await writer.original.rollbackTransaction();
  if (writer.depth === depth && writer.runner.isTransactionActive) await writer.original.rollbackTransaction();
}

/** @internal A re-entrant call that left levels open or ended its own savepoint. */
export function levelsLeftOpenInCall(jobId: string): WriteCoordinatorError {
  return new InternalError(
    'a re-entrant call left transaction levels open (a startTransaction() without commit) or ended its ' +
      'own savepoint (a commitTransaction()/rollbackTransaction() at its level); it was rolled back',
    { jobId },
  );
}

/** @internal A job whose work left a level open: rolled back, never committed half-way. */
export function levelsLeftOpen(ctx: JobContext): WriteCoordinatorError {
  return ownFailure(
    'left transaction levels open (a startTransaction() without commit); nothing was written',
    undefined,
    ctx,
  );
}

/** @internal A failure of the coordinator's own step (BEGIN, COMMIT, SAVEPOINT) as a coded error. */
export function ownFailure(what: string, error: unknown, ctx: JobContext): WriteCoordinatorError {
  const options = { cause: error, jobId: ctx.jobId, label: ctx.label };
  const detail = error === undefined ? what : `${what} (${error instanceof Error ? error.message : String(error)})`;
  return isBusy(sqliteCode(error)) ? new BusyError(detail, options) : new InternalError(detail, options);
}
