import type { Database, Options as DatabaseOptions } from 'better-sqlite3';
import type { QueryRunner } from 'typeorm';
import { InvalidOptionsError } from './errors';
import { applyBusyTimeout } from './sqlite-pragmas';
import type { WriterGate } from './writer-gate';

/** The parts of TypeORM's better-sqlite3 driver the read connection copies. */
interface BetterSqlite3DriverLike {
  sqlite: new (path: string, options: DatabaseOptions) => Database;
  options: { key?: string; nativeBinding?: string };
}

/** How many read/write verdicts are remembered (one per distinct SQL text). */
const VERDICT_CACHE_SIZE = 500;

/**
 * @internal A read-only connection on the same WAL database, serving the reads issued outside
 * jobs. WAL gives every statement on it the last committed state: a running job's uncommitted
 * rows are never visible. Queries run through a second TypeORM query runner of the same class
 * as the DataSource's, so results, logging and subscribers behave as TypeORM's own.
 */
export class ReadConnection {
  private readonly db: Database;
  private readonly runner: QueryRunner;
  private readonly verdicts = new Map<string, boolean>();

  /** @throws {InvalidOptionsError} when the database is in memory (it has no second connection). */
  constructor(gate: WriterGate, busyTimeoutMs: number) {
    const driver = gate.dataSource.driver as unknown as BetterSqlite3DriverLike;
    const writer = gate.connection;
    if (writer.memory) {
      throw new InvalidOptionsError(
        'readIsolation',
        'false for an in-memory database (reads outside jobs need a second connection to a database file)',
        true,
      );
    }
    this.db = new driver.sqlite(writer.name, {
      readonly: true,
      fileMustExist: true,
      timeout: busyTimeoutMs,
      ...(driver.options.nativeBinding ? { nativeBinding: driver.options.nativeBinding } : {}),
    });
    if (driver.options.key) this.db.pragma(`key = ${JSON.stringify(driver.options.key)}`);
    applyBusyTimeout(this.db, busyTimeoutMs);
    const readerDriver = Object.create(driver as object, { databaseConnection: { value: this.db } }) as object;
    const Runner = gate.runner.constructor as new (driver: object) => QueryRunner;
    this.runner = new Runner(readerDriver);
  }

  /** False once closed; reads then go to the writing connection (no job can be running). */
  get isOpen(): boolean {
    return this.db.open;
  }

  /**
   * True when SQLite says `sql` does not write (`sqlite3_stmt_readonly`). A statement that does
   * not prepare is answered here too, so its caller gets the error it would get anyway.
   */
  reads(sql: string): boolean {
    const known = this.verdicts.get(sql);
    if (known !== undefined) return known;
    let verdict: boolean;
    try {
      verdict = this.db.prepare(sql).readonly;
    } catch {
      return true;
    }
    if (this.verdicts.size >= VERDICT_CACHE_SIZE) this.verdicts.delete(this.verdicts.keys().next().value!);
    this.verdicts.set(sql, verdict);
    return verdict;
  }

  /** Runs a read through TypeORM's query runner bound to this connection. */
  query(sql: string, parameters?: unknown[], structured?: boolean): Promise<unknown> {
    return structured ? this.runner.query(sql, parameters, true) : this.runner.query(sql, parameters);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
