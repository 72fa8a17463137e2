import { AsyncLocalStorage } from 'node:async_hooks';
import type { Database, Statement } from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { RawStatementCache } from './raw-statements';
import { isBusy, sqliteCode } from '../sqlite/sqlite-error';

/** @internal The shared runner's methods as TypeORM defines them, before the router wraps them. */
export interface RunnerMethods {
  query(sql: string, parameters?: unknown[], structured?: boolean): Promise<unknown>;
  startTransaction(isolationLevel?: string): Promise<void>;
  commitTransaction(): Promise<void>;
  rollbackTransaction(): Promise<void>;
}

/** The statements of one savepoint level. */
interface SavepointStatements {
  readonly open: Statement;
  readonly release: Statement;
  readonly rollbackTo: Statement;
}

/** How many read/write verdicts are remembered (one per distinct SQL text). */
const VERDICT_CACHE_SIZE = 500;

/** Longest pause between two attempts to take the write lock. */
const MAX_BACKOFF_MS = 50;

/** Marks the async context of the coordinator's own calls of the original methods. */
const coordinatorCalls = new AsyncLocalStorage<true>();

/** @internal True inside the coordinator's own BEGIN/COMMIT/ROLLBACK/SAVEPOINT calls. */
export function isCoordinatorCall(): boolean {
  return coordinatorCalls.getStore() === true;
}

/**
 * @internal The DataSource's one shared query runner (TypeORM's better-sqlite3 driver has only
 * one), driven by the coordinator through TypeORM's own methods so that its transaction depth
 * stays right. Holds the original methods, so that the coordinator's own BEGIN/COMMIT/SAVEPOINT
 * bypass the routing the router installs on the runner.
 */
export class WriterConnection {
  readonly runner: QueryRunner;
  /** The better-sqlite3 connection under the runner. */
  readonly connection: Database;
  /**
   * TypeORM's own transaction methods, marked as the coordinator's calls (see {@link isCoordinatorCall}),
   * so that the statements they send pass the router.
   */
  readonly original: Omit<RunnerMethods, 'query'>;
  /** TypeORM's own `query`, which bypasses the router (no marking needed). */
  readonly query: RunnerMethods['query'];
  /** Prepared statements on the writing connection, for the raw fast path (`job.statement()`). */
  readonly statements: RawStatementCache;
  /** Read/write verdicts of {@link reads}, by SQL text. */
  private readonly verdicts = new Map<string, boolean>();
  /** Prepared savepoint statements, by depth (see {@link openSavepoint}). */
  private readonly savepoints: SavepointStatements[] = [];

  constructor(
    readonly dataSource: DataSource,
    private readonly busyBudgetMs: number,
  ) {
    this.runner = dataSource.createQueryRunner();
    const proto = Object.getPrototypeOf(this.runner) as RunnerMethods;
    const runner = this.runner;
    this.connection = (dataSource.driver as unknown as { databaseConnection: Database }).databaseConnection;
    this.statements = new RawStatementCache(this.connection);
    this.query = proto.query.bind(runner);
    this.original = {
      startTransaction: (level) => coordinatorCalls.run(true, () => proto.startTransaction.call(runner, level)),
      commitTransaction: () => coordinatorCalls.run(true, () => proto.commitTransaction.call(runner)),
      rollbackTransaction: () => coordinatorCalls.run(true, () => proto.rollbackTransaction.call(runner)),
    };
  }

  /**
   * True when SQLite says `sql` does not write (`sqlite3_stmt_readonly` on this connection),
   * remembered per SQL text. A statement that does not prepare counts as a read: running it
   * gives its caller the error it would get anyway.
   */
  reads(sql: string): boolean {
    let verdict = this.verdicts.get(sql);
    if (verdict !== undefined) return verdict;
    try {
      verdict = this.connection.prepare(sql).readonly;
    } catch {
      return true;
    }
    if (this.verdicts.size >= VERDICT_CACHE_SIZE) this.verdicts.delete(this.verdicts.keys().next().value!);
    this.verdicts.set(sql, verdict);
    return verdict;
  }

  /** The manager bound to the shared runner: what a job's work receives. */
  get manager(): EntityManager {
    return this.runner.manager;
  }

  /** True when TypeORM's view of the runner and the connection agree that no transaction is open. */
  get inStep(): boolean {
    return !this.connection.inTransaction && !this.runner.isTransactionActive && this.depth === 0;
  }

  /** Whether the connection is inside a transaction (SQLite's view, not TypeORM's). */
  get inTransaction(): boolean {
    return this.connection.inTransaction;
  }

  /** TypeORM's transaction depth of the shared runner (1 inside a job, more in savepoints). */
  get depth(): number {
    return (this.runner as unknown as { transactionDepth: number }).transactionDepth;
  }

  /**
   * Opens the job's transaction. TypeORM sends `BEGIN TRANSACTION`, which the router turns into
   * `BEGIN IMMEDIATE TRANSACTION`: the write lock is taken now, or SQLite answers BUSY at once
   * (after `busy_timeout`). While another process holds the lock, retries with exponential
   * backoff (without blocking the event loop) for at most `busyBudgetMs`, then throws the BUSY
   * error. Stops early, throwing the signal's reason, when the job's signal aborts.
   */
  async begin(job: { readonly signal: AbortSignal }): Promise<void> {
    const giveUpAt = performance.now() + this.busyBudgetMs;
    for (let backoff = 1; ; backoff = Math.min(backoff * 2, MAX_BACKOFF_MS)) {
      try {
        await this.original.startTransaction();
        return;
      } catch (error) {
        await this.resync();
        const remaining = giveUpAt - performance.now();
        if (!isBusy(sqliteCode(error)) || remaining <= 0) throw error;
        const pause = Math.min(remaining, backoff * (0.5 + Math.random() / 2));
        const signal = job.signal; // read only here: most jobs never need their signal created
        await sleep(pause, undefined, { signal }).catch(() => {
          throw signal.reason;
        });
      }
    }
  }

  /**
   * Opens a savepoint directly on the connection, named and counted as TypeORM would
   * (`typeorm_<depth>`), so that TypeORM's own nested transactions inside it stay in step. Skips
   * TypeORM's per-statement machinery: group commit opens one per job.
   */
  openSavepoint(): void {
    const depth = this.depth;
    this.savepoint(depth).open.run();
    this.setDepth(depth + 1);
  }

  /** Releases the innermost savepoint opened by {@link openSavepoint}. */
  releaseSavepoint(): void {
    const depth = this.depth;
    this.savepoint(depth - 1).release.run();
    this.setDepth(depth - 1);
  }

  /** Rolls back to the innermost savepoint and removes it. */
  rollbackSavepoint(): void {
    const depth = this.depth;
    const savepoint = this.savepoint(depth - 1);
    savepoint.rollbackTo.run();
    savepoint.release.run();
    this.setDepth(depth - 1);
  }

  /** The statements of savepoint `typeorm_<depth>`, prepared once (`Database.exec` compiles every time). */
  private savepoint(depth: number): SavepointStatements {
    let statements = this.savepoints[depth];
    if (statements === undefined) {
      const name = `typeorm_${depth}`;
      statements = {
        open: this.connection.prepare(`SAVEPOINT ${name}`),
        release: this.connection.prepare(`RELEASE SAVEPOINT ${name}`),
        rollbackTo: this.connection.prepare(`ROLLBACK TO SAVEPOINT ${name}`),
      };
      this.savepoints[depth] = statements;
    }
    return statements;
  }

  private setDepth(depth: number): void {
    (this.runner as unknown as { transactionDepth: number }).transactionDepth = depth;
  }

  /** Rolls back the innermost open level, if any; a failure is ignored (the caller's error matters). */
  async rollbackIfOpen(): Promise<void> {
    if (this.runner.isTransactionActive) await this.original.rollbackTransaction().catch(() => undefined);
  }

  /**
   * Brings TypeORM's view of the shared runner back in line with the connection after a job that
   * did not commit: SQLite may have ended the transaction itself (SQLITE_FULL, SQLITE_IOERR roll it
   * back, and TypeORM's failed ROLLBACK then leaves `isTransactionActive` and the depth set), or
   * failed work may have left levels open. Left as is, every later job would run in savepoints of
   * a transaction that never commits.
   */
  async resync(): Promise<void> {
    if (this.inStep) return;
    if (this.connection.inTransaction) await this.query('ROLLBACK');
    const state = this.runner as unknown as { isTransactionActive: boolean };
    state.isTransactionActive = false;
    this.setDepth(0);
  }
}
