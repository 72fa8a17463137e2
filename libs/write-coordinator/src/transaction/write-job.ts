import type { EntityManager } from 'typeorm';
import type { RawStatement } from './raw-statements';

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
