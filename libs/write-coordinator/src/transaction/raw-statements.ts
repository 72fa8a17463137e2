import type { Database, RunResult, Statement } from 'better-sqlite3';
import { InternalError, TransactionControlError } from '../errors';
import { firstKeyword, statementKind } from '../sqlite/sql-statement';

/** How many prepared statements a coordinator keeps (one per distinct SQL text). */
const CACHE_SIZE = 256;

/**
 * A prepared statement on the DataSource's own better-sqlite3 connection, for hot paths inside a
 * job: no TypeORM on the way, so no per-call parsing, escaping, logging or subscribers. It runs in
 * the job's transaction and current savepoint, because it is the same connection. Usable only
 * while its job runs: a call after the job ended throws instead of writing outside any
 * transaction.
 *
 * @example
 * await coordinator.run((manager, job) => {
 *   const insert = job.statement('INSERT INTO events (kind, at) VALUES (?, ?)');
 *   for (const e of events) insert.run(e.kind, e.at);
 * });
 */
export interface RawStatement {
  /** Runs a writing statement; `changes` and `lastInsertRowid` as better-sqlite3 reports them. */
  run(...params: unknown[]): RunResult;
  /** First row of a reading statement, or undefined. */
  get(...params: unknown[]): unknown;
  /** Every row of a reading statement. */
  all(...params: unknown[]): unknown[];
}

/** @internal The statement cache of one writing connection (bounded, least recently prepared out). */
export class RawStatementCache {
  private readonly statements = new Map<string, Statement>();

  constructor(private readonly db: Database) {}

  /**
   * A statement for `sql` bound to a job: `problem` says why it may not run now (its job ended, …),
   * or undefined when it may.
   * @throws {TransactionControlError} for `BEGIN`, `COMMIT`, `SAVEPOINT`, …: the job's
   *   transaction is the coordinator's.
   */
  statement(sql: string, problem: () => string | undefined, jobId: string): RawStatement {
    let prepared = this.statements.get(sql);
    if (prepared === undefined) {
      if (statementKind(sql) === 'transaction') {
        throw new TransactionControlError(firstKeyword(sql)!.toUpperCase(), { jobId });
      }
      prepared = this.db.prepare(sql);
      if (this.statements.size >= CACHE_SIZE) this.statements.delete(this.statements.keys().next().value!);
      this.statements.set(sql, prepared);
    }
    const stmt = prepared;
    const check = () => {
      const reason = problem();
      if (reason !== undefined) throw new InternalError(reason, { jobId });
    };
    return {
      run(...params) {
        check();
        return stmt.run(...params);
      },
      get(...params) {
        check();
        return stmt.get(...params);
      },
      all(...params) {
        check();
        return stmt.all(...params);
      },
    };
  }
}
