import type { Database, Options as DatabaseOptions } from 'better-sqlite3';
import type { QueryRunner } from 'typeorm';
import { InvalidOptionsError } from '../errors';
import { PrepareDatabase, setUpReadConnection } from './read-connection.setup';
import { applyBusyTimeout } from '../sqlite/sqlite-pragmas';
import { TempSchemaShadow } from './temp-schema-shadow';
import type { WriterConnection } from '../transaction/writer-connection';

/** The parts of TypeORM's better-sqlite3 driver the read connection copies. */
interface BetterSqlite3DriverLike {
  sqlite: new (path: string, options: DatabaseOptions) => Database;
  options: {
    key?: string;
    nativeBinding?: string;
    verbose?: DatabaseOptions['verbose'];
    prepareDatabase?: PrepareDatabase;
  };
}

/** How many read/write verdicts are remembered (one per distinct SQL text). */
const VERDICT_CACHE_SIZE = 500;

/** The TEMP catalog, which on the read connection would list the placeholders, not the writer's tables. */
const TEMP_CATALOG = /\bsqlite_temp_(?:master|schema)\b|\btemp\W*\.\W*sqlite_(?:master|schema)\b/i;

/**
 * @internal A read-only connection on the same WAL database, serving the reads issued outside
 * jobs. WAL gives every statement on it the last committed state: a running job's uncommitted
 * rows are never visible. Queries run through a second TypeORM query runner of the same class
 * as the DataSource's, so results, logging and subscribers behave as TypeORM's own.
 *
 * It is set up like the writer (`key`, `prepareDatabase`, the attached databases; see
 * {@link setUpReadConnection}). Whatever schema it still lacks (TEMP tables, databases attached
 * later, functions registered on the writer only) makes a statement fail to prepare here, and
 * {@link reads} then sends it to the writer.
 */
export class ReadConnection {
  private readonly db: Database;
  private readonly writer: Database;
  private readonly runner: QueryRunner;
  private readonly temp: TempSchemaShadow;
  /**
   * Only verdicts of statements that prepare here, taken against the current TEMP placeholders
   * (cleared when they change): a statement that fails here may succeed once a table exists.
   */
  private readonly verdicts = new Map<string, boolean>();
  /** Set while an async `prepareDatabase` hook runs on this connection: reads wait for it. */
  private setUp: Promise<void> | undefined;
  /** What that async hook failed with: every read outside jobs fails with it. */
  private setUpError: Error | undefined;

  /**
   * @throws {InvalidOptionsError} when the database is in memory (it has no second connection),
   *   or when the `prepareDatabase` hook throws on this read-only connection.
   */
  constructor(writer: WriterConnection, busyTimeoutMs: number) {
    const driver = writer.dataSource.driver as unknown as BetterSqlite3DriverLike;
    const writerDb = writer.connection;
    if (writerDb.memory) {
      throw new InvalidOptionsError(
        'readIsolation',
        'false for an in-memory database (reads outside jobs need a second connection to a database file)',
        true,
      );
    }
    this.writer = writerDb;
    this.db = new driver.sqlite(writerDb.name, {
      readonly: true,
      fileMustExist: true,
      timeout: busyTimeoutMs,
      ...(driver.options.verbose ? { verbose: driver.options.verbose } : {}),
      ...(driver.options.nativeBinding ? { nativeBinding: driver.options.nativeBinding } : {}),
    });
    try {
      if (driver.options.key) this.db.pragma(`key = ${JSON.stringify(driver.options.key)}`);
      applyBusyTimeout(this.db, busyTimeoutMs);
      const setUp = setUpReadConnection(this.db, writerDb, driver.options.prepareDatabase);
      if (setUp) {
        this.setUp = setUp.then(
          () => (this.setUp = undefined),
          (error: Error) => {
            this.setUpError = error;
            this.setUp = undefined;
          },
        );
      }
      this.temp = new TempSchemaShadow(this.db, writerDb);
    } catch (error) {
      this.db.close();
      throw error;
    }
    const readerDriver = Object.create(driver as object, { databaseConnection: { value: this.db } }) as object;
    const Runner = writer.runner.constructor as new (driver: object) => QueryRunner;
    this.runner = new Runner(readerDriver);
  }

  /** False once closed; reads then go to the writing connection (no job can be running). */
  get isOpen(): boolean {
    return this.db.open;
  }

  /**
   * True when this connection can answer `sql`: SQLite says it does not write
   * (`sqlite3_stmt_readonly`) and it prepares here. False sends it to the writing connection,
   * through the queue: a write, or a read of schema only the writer has (a TEMP table, a
   * database attached later, a function registered on the writer only). A statement that fails
   * on both connections is answered here (the same error) unless the writer has TEMP tables, whose
   * placeholders here would give a misleading one.
   */
  reads(sql: string): boolean {
    if (this.setUp || this.setUpError) return true; // query() waits for the hook, or reports its failure
    if (this.temp.sync()) this.verdicts.clear();
    const known = this.verdicts.get(sql);
    if (known !== undefined) return known;
    let verdict: boolean;
    if (this.temp.active && TEMP_CATALOG.test(sql)) {
      verdict = false;
    } else {
      try {
        verdict = this.db.prepare(sql).readonly;
      } catch {
        return !this.temp.active && !this.preparesOnWriter(sql);
      }
    }
    if (this.verdicts.size >= VERDICT_CACHE_SIZE) this.verdicts.delete(this.verdicts.keys().next().value!);
    this.verdicts.set(sql, verdict);
    return verdict;
  }

  /** Runs a read through TypeORM's query runner bound to this connection. */
  query(sql: string, parameters?: unknown[], structured?: boolean): Promise<unknown> {
    if (this.setUp) return this.setUp.then(() => this.query(sql, parameters, structured));
    if (this.setUpError) return Promise.reject(this.setUpError);
    return structured ? this.runner.query(sql, parameters, true) : this.runner.query(sql, parameters);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  private preparesOnWriter(sql: string): boolean {
    try {
      this.writer.prepare(sql);
      return true;
    } catch {
      return false;
    }
  }
}
