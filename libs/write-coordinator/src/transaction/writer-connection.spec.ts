/**
 * WriterConnection against a real SQLite file: the statements it sends for BEGIN, savepoints and
 * resync, TypeORM's transaction depth after each, the BUSY retries, the read/write verdicts.
 *
 * The log is better-sqlite3's `verbose` callback on the DataSource's connection
 * (`test/fixtures/statement-log.ts`), not a TypeORM logger: `openSavepoint()`,
 * `releaseSavepoint()` and `rollbackSavepoint()` run on the connection with `exec`, which
 * TypeORM's logger never sees. Preparing a statement logs nothing; running one does, failed
 * attempts included (the callback runs before SQLite steps the statement).
 *
 * The connection is built with `new WriterConnection(dataSource, busyBudgetMs)`. `begin()` uses
 * TypeORM's own `startTransaction()`, whose literal `BEGIN TRANSACTION` only the router makes
 * `BEGIN IMMEDIATE`: the specs that need the write lock install a `WriteRouter` on it.
 */
import Database from 'better-sqlite3';
import { BEGIN, INSERT, LoggedDataSource, openLoggedDataSource } from '../../../../test/fixtures/statement-log';
import { WriteRouter } from '../typeorm/write-router';
import { TransactionScope } from './transaction-scope';
import { WriterConnection } from './writer-connection';

/** A job's signal, as `begin()` reads it. */
const job = (signal = new AbortController().signal) => ({ signal });

describe('WriterConnection', () => {
  let logged: LoggedDataSource;
  let writer: WriterConnection;
  let router: WriteRouter | undefined;

  /** The connection on a fresh file; `routed` installs the router (BEGIN IMMEDIATE). */
  async function setUp({ busyBudgetMs = 1_000, routed = true } = {}): Promise<void> {
    // busy_timeout 10 ms, as the coordinator sets it: waiting longer is begin()'s async retry loop.
    logged = await openLoggedDataSource({ timeout: 10 } as never);
    writer = new WriterConnection(logged.dataSource, busyBudgetMs);
    if (routed) {
      const scope = new TransactionScope(
        { afterCommitError: () => undefined, committed: () => undefined, failed: () => undefined },
        { maxSize: 1, waitMs: 0, take: () => undefined, whenArrival: () => Promise.resolve(), yieldMode: 'never' },
      );
      const enqueue = () => Promise.reject(new Error('this spec queues nothing'));
      router = new WriteRouter(writer, scope, undefined, 'throw', enqueue, () => undefined);
      router.install();
    }
    logged.clear();
  }

  afterEach(async () => {
    router?.uninstall();
    router = undefined;
    logged.onWriterStatement = undefined;
    await logged.close();
  });

  const state = () => ({
    depth: writer.depth,
    typeormActive: writer.runner.isTransactionActive,
    sqliteActive: writer.inTransaction,
  });

  describe('begin()', () => {
    it("sends TypeORM's own BEGIN TRANSACTION on its own: the router is what makes it IMMEDIATE", async () => {
      await setUp({ routed: false });
      await writer.begin(job());
      await writer.original.commitTransaction();

      expect(logged.writer).toEqual(['BEGIN TRANSACTION', 'COMMIT']);
    });

    it('behind the router, takes the write lock with BEGIN IMMEDIATE at TypeORM depth 1', async () => {
      await setUp();
      await writer.begin(job());

      expect(logged.writer).toEqual([BEGIN]);
      expect(state()).toEqual({ depth: 1, typeormActive: true, sqliteActive: true });
      await writer.original.commitTransaction();
      expect(logged.writer).toEqual([BEGIN, 'COMMIT']);
      expect(state()).toEqual({ depth: 0, typeormActive: false, sqliteActive: false });
    });

    describe('when another connection holds the write lock', () => {
      let other: Database.Database | undefined;

      /** The connection with `busyBudgetMs`, and another connection holding BEGIN IMMEDIATE on the file. */
      async function setUpLocked(busyBudgetMs: number): Promise<Database.Database> {
        await setUp({ busyBudgetMs });
        other = new Database(logged.database);
        other.exec('BEGIN IMMEDIATE');
        return other;
      }

      afterEach(() => {
        if (other?.inTransaction) other.exec('ROLLBACK');
        other?.close();
        other = undefined;
      });

      it('retries BEGIN IMMEDIATE until the lock is free, leaving nothing behind between attempts', async () => {
        const locker = await setUpLocked(5_000); // ample: the lock is freed after two attempts
        let attempts = 0;
        logged.onWriterStatement = (sql) => {
          if (sql === BEGIN && ++attempts === 3) locker.exec('ROLLBACK'); // free just before the third
        };
        await writer.begin(job());

        expect(logged.writer).toEqual([BEGIN, BEGIN, BEGIN]);
        expect(state()).toEqual({ depth: 1, typeormActive: true, sqliteActive: true });
        await writer.original.commitTransaction();
      });

      it('gives up with SQLITE_BUSY once busyBudgetMs is spent, with TypeORM and SQLite both out of any transaction', async () => {
        await setUpLocked(100);
        const error = await writer.begin(job()).catch((e: unknown) => e);

        expect(error).toMatchObject({ code: 'SQLITE_BUSY' });
        expect(logged.writer.length).toBeGreaterThan(1); // it did retry (how often depends on the clock)
        expect(new Set(logged.writer)).toEqual(new Set([BEGIN]));
        expect(state()).toEqual({ depth: 0, typeormActive: false, sqliteActive: false });
      });

      it("stops retrying with the signal's reason when the job's signal aborts", async () => {
        await setUpLocked(5_000);
        const controller = new AbortController();
        const reason = new Error('cancelled');
        let attempts = 0;
        logged.onWriterStatement = (sql) => {
          if (sql === BEGIN && ++attempts === 2) controller.abort(reason);
        };

        await expect(writer.begin(job(controller.signal))).rejects.toBe(reason);
        expect(logged.writer).toEqual([BEGIN, BEGIN]);
        expect(state()).toEqual({ depth: 0, typeormActive: false, sqliteActive: false });
      });
    });
  });

  describe('savepoints', () => {
    beforeEach(() => setUp());

    it("opens, releases and rolls back savepoints named and counted as TypeORM's, so TypeORM's own levels nest among them", async () => {
      await writer.begin(job());
      const depths = [writer.depth];
      writer.openSavepoint();
      depths.push(writer.depth);
      await writer.query(INSERT, ['kept']);
      writer.openSavepoint();
      depths.push(writer.depth);
      await writer.original.startTransaction(); // TypeORM's own: must name the next level
      depths.push(writer.depth);
      await writer.query(INSERT, ['nested']);
      await writer.original.commitTransaction();
      depths.push(writer.depth);
      writer.releaseSavepoint();
      depths.push(writer.depth);
      writer.openSavepoint();
      await writer.query(INSERT, ['erased']);
      writer.rollbackSavepoint();
      depths.push(writer.depth);
      writer.releaseSavepoint();
      depths.push(writer.depth);
      await writer.original.commitTransaction();
      depths.push(writer.depth);

      expect(logged.writer).toEqual([
        BEGIN,
        'SAVEPOINT typeorm_1',
        "INSERT INTO items (key, job, step) VALUES ('kept', 0, 0)",
        'SAVEPOINT typeorm_2',
        'SAVEPOINT typeorm_3',
        "INSERT INTO items (key, job, step) VALUES ('nested', 0, 0)",
        'RELEASE SAVEPOINT typeorm_3',
        'RELEASE SAVEPOINT typeorm_2',
        'SAVEPOINT typeorm_2',
        "INSERT INTO items (key, job, step) VALUES ('erased', 0, 0)",
        'ROLLBACK TO SAVEPOINT typeorm_2',
        'RELEASE SAVEPOINT typeorm_2',
        'RELEASE SAVEPOINT typeorm_1',
        'COMMIT',
      ]);
      expect(depths).toEqual([1, 2, 3, 4, 3, 2, 2, 1, 0]);
      const keys = new Database(logged.database, { readonly: true });
      expect(keys.prepare('SELECT key FROM items ORDER BY id').pluck().all()).toEqual(['kept', 'nested']);
      keys.close();
    });
  });

  describe('reads(sql)', () => {
    beforeEach(() => setUp());

    it.each([
      ['SELECT * FROM items', true],
      ['WITH v(k) AS (SELECT 1) SELECT k FROM v', true],
      ['WITH v(k) AS (SELECT ?) INSERT INTO items (key, job, step) SELECT k, 0, 0 FROM v', false],
      [INSERT, false],
      ['DELETE FROM items', false],
      ['SELECT * FROM no_such_table', true], // does not prepare: its caller gets SQLite's error anyway
    ])('%j reads: %s (asked of SQLite, nothing run)', (sql, verdict) => {
      expect(writer.reads(sql)).toBe(verdict);
      expect(writer.reads(sql)).toBe(verdict); // remembered
      expect(logged.writer).toEqual([]);
    });
  });

  describe('resync()', () => {
    beforeEach(() => setUp());

    it('after SQLite ended the transaction itself (SQLITE_FULL), resets TypeORM to depth 0 without a statement, so the next begin() is a BEGIN', async () => {
      const pageCount = writer.connection.pragma('page_count', { simple: true }) as number;
      writer.connection.pragma(`max_page_count = ${pageCount + 2}`);
      await writer.begin(job());
      writer.openSavepoint();
      const full = await writer.query(INSERT, ['x'.repeat(20_000)]).catch((e: unknown) => e);
      expect(full).toMatchObject({ code: 'SQLITE_FULL' });
      expect(state()).toEqual({ depth: 2, typeormActive: true, sqliteActive: false }); // out of step
      writer.connection.pragma('max_page_count = 1073741823');
      logged.clear();

      await writer.resync();
      expect(logged.writer).toEqual([]);
      expect(state()).toEqual({ depth: 0, typeormActive: false, sqliteActive: false });
      await writer.begin(job());
      await writer.query(INSERT, ['after']);
      await writer.original.commitTransaction();
      expect(logged.writer).toEqual([BEGIN, "INSERT INTO items (key, job, step) VALUES ('after', 0, 0)", 'COMMIT']);
    });

    it('with a transaction still open, rolls it back whole with one ROLLBACK', async () => {
      await writer.begin(job());
      writer.openSavepoint();
      await writer.original.startTransaction();
      logged.clear();

      await writer.resync();
      expect(logged.writer).toEqual(['ROLLBACK']);
      expect(state()).toEqual({ depth: 0, typeormActive: false, sqliteActive: false });
    });
  });
});
