/**
 * WriteRouter against a real SQLite file: where each statement that reaches the DataSource's
 * shared query runner ends up (inside the running job, on the read connection, as a job of its
 * own, refused), read off the statement logs of the two connections.
 *
 * The logs are better-sqlite3's `verbose` callbacks (`test/fixtures/statement-log.ts`), one for
 * the writing connection and one for the read connection the attachment opens; a TypeORM logger
 * would miss the savepoints that group commit opens with `connection.exec`. The router is
 * installed by `attachToDataSource`, as `Coordinator.attach()` installs it (it needs the read
 * connection the attachment opens), on a real `WriteQueue` and `TransactionScope`, without Nest.
 */
import { committedKeys } from '../../../../test/fixtures/committed-rows';
import { deferred, flush } from '../../../../test/fixtures/deferred';
import { Item } from '../../../../test/fixtures/item.entity';
import {
  BEGIN,
  buildMiddleLayer,
  INSERT,
  inserted,
  LoggedDataSource,
  MiddleLayer,
  MiddleLayerOptions,
  openLoggedDataSource,
} from '../../../../test/fixtures/statement-log';
import { TransactionScope } from '../transaction/transaction-scope';
import { WriterConnection } from '../transaction/writer-connection';
import { WriteRouter } from './write-router';

/** A job as group commit runs it alone: a batch leader, which needs no savepoint. */
const loneJob = (...statements: string[]) => [BEGIN, ...statements, 'COMMIT'];
/** What the read connection's TEMP-schema check runs on the writer before a read outside a job. */
const TEMP_VERSION = 'PRAGMA temp.schema_version';
const TEMP_NAMES =
  'SELECT group_concat(name, char(0)) FROM (\n' +
  "  SELECT name FROM temp.sqlite_schema WHERE type IN ('table', 'view') ORDER BY name)";

describe('WriteRouter', () => {
  let logged: LoggedDataSource;
  let layer: MiddleLayer | undefined;

  async function setUp(options: MiddleLayerOptions = {}): Promise<MiddleLayer> {
    logged = await openLoggedDataSource();
    layer = buildMiddleLayer(logged, options);
    return layer;
  }

  afterEach(async () => {
    await layer?.close();
    layer = undefined;
    await logged.close();
  });

  describe('inside a job', () => {
    it('passes statements through to the job, reads included (they see its uncommitted rows)', async () => {
      const l = await setUp();
      const count = await l.run(async (m) => {
        await m.query(INSERT, ['a']);
        return m.query('SELECT count(*) AS n FROM items');
      });

      expect(count).toEqual([{ n: 1 }]);
      expect(logged.writer).toEqual(loneJob(inserted('a'), 'SELECT count(*) AS n FROM items'));
      expect(logged.reader).toEqual([]);
      expect(l.queued).toEqual([]);
    });

    it('refuses COMMIT with TRANSACTION_CONTROL; the job goes on and commits once, when it returns', async () => {
      const l = await setUp();
      const refusal = await l.run(async (m) => {
        await m.query(INSERT, ['before']);
        const error = await m.query('COMMIT').catch((e: unknown) => e);
        await m.query(INSERT, ['after']);
        return error;
      });

      expect(refusal).toMatchObject({ code: 'TRANSACTION_CONTROL' });
      expect(logged.writer).toEqual(loneJob(inserted('before'), inserted('after')));
      expect(committedKeys(logged.database)).toEqual(['before', 'after']);
    });
  });

  describe('outside a job', () => {
    it('sends a read to the read connection: only the TEMP-schema check runs on the writer', async () => {
      const l = await setUp();
      await l.run((m) => m.query(INSERT, ['a']));
      logged.clear();

      expect(await logged.dataSource.query('SELECT key FROM items')).toEqual([{ key: 'a' }]);
      expect(await logged.dataSource.query('SELECT key FROM items')).toEqual([{ key: 'a' }]);

      expect(logged.reader).toEqual(['SELECT key FROM items', 'SELECT key FROM items']);
      expect(logged.writer).toEqual([TEMP_VERSION, TEMP_NAMES, TEMP_VERSION]);
      expect(l.queued).toEqual([]);
    });

    it('answers a read from the last commit while a job holds its transaction, without waiting for it', async () => {
      const l = await setUp();
      const release = deferred();
      const job = l.run(async (m) => {
        await m.query(INSERT, ['uncommitted']);
        await release.promise;
      });
      await flush();

      expect(await logged.dataSource.query('SELECT key FROM items')).toEqual([]);
      expect(await logged.dataSource.query('SELECT key FROM items')).toEqual([]);
      release.resolve();
      await job;
      expect(logged.reader).toEqual(['SELECT key FROM items', 'SELECT key FROM items']);
      // Inside the writer's transaction the TEMP schema version proves nothing: each read re-reads the names.
      expect(logged.writer).toEqual(
        loneJob(inserted('uncommitted'), TEMP_VERSION, TEMP_NAMES, TEMP_VERSION, TEMP_NAMES),
      );
    });

    it('runs a write as its own job: its own BEGIN IMMEDIATE … COMMIT', async () => {
      const l = await setUp();
      await logged.dataSource.query(INSERT, ['raw']);

      expect(logged.writer).toEqual(loneJob(inserted('raw')));
      expect(l.queued).toEqual([{ label: 'query(INSERT)', batchable: true }]);
      expect(committedKeys(logged.database)).toEqual(['raw']);
    });

    it('runs a WITH … INSERT as a write (SQLite says so), never on the read connection', async () => {
      const l = await setUp();
      const sql = 'WITH v(k) AS (SELECT ?) INSERT INTO items (key, job, step) SELECT k, 0, 0 FROM v';
      await logged.dataSource.query(sql, ['cte']);

      expect(logged.writer).toEqual(loneJob(sql.replace('?', "'cte'")));
      expect(logged.reader).toEqual([]);
      expect(l.queued).toEqual([{ label: 'query(WITH)', batchable: true }]);
    });

    it("runs an entity write as one job, TypeORM's re-select included", async () => {
      const l = await setUp();
      await logged.dataSource.getRepository(Item).insert({ key: 'entity', job: 1, step: 0 });

      expect(logged.writer).toEqual(
        loneJob(
          `INSERT INTO "items"("id", "key", "job", "step", "deletedAt") VALUES (NULL, 'entity', 1, 0, NULL)`,
          `SELECT "Item"."id" AS "Item_id", "Item"."deletedAt" AS "Item_deletedAt" FROM "items" "Item" ` +
            `WHERE ( "Item"."id" = 1 ) AND ( "Item"."deletedAt" IS NULL )`,
        ),
      );
      expect(l.queued).toEqual([{ label: 'EntityManager.insert', batchable: true }]);
    });

    it('runs a PRAGMA as a job without a transaction, never batched', async () => {
      const l = await setUp();
      await logged.dataSource.query('PRAGMA user_version = 7');

      expect(logged.writer).toEqual(['PRAGMA user_version = 7']);
      expect(l.queued).toEqual([{ label: 'query(PRAGMA)', batchable: false }]);
    });

    it("holds a transaction opened with queryRunner.startTransaction() as a job of its own until the caller's commit", async () => {
      const l = await setUp();
      const runner = logged.dataSource.createQueryRunner(); // the shared one
      await runner.startTransaction();
      await runner.query(INSERT, ['held']);
      expect(committedKeys(logged.database)).toEqual([]);
      await runner.commitTransaction();

      expect(logged.writer).toEqual([BEGIN, inserted('held'), 'COMMIT']);
      expect(l.queued).toEqual([{ label: 'queryRunner.startTransaction', batchable: false }]);
      expect(committedKeys(logged.database)).toEqual(['held']);
    });

    it("refuses a write with WRITE_OUTSIDE_JOB in 'throw' mode, before anything runs", async () => {
      const l = await setUp({ writesOutsideJobs: 'throw' });

      await expect(logged.dataSource.query(INSERT, ['refused'])).rejects.toMatchObject({ code: 'WRITE_OUTSIDE_JOB' });
      expect(logged.writer).toEqual([]);
      expect(l.queued).toEqual([]);
    });
  });

  describe('install() / uninstall()', () => {
    it("routes the shared runner while installed and gives TypeORM's own methods back after", async () => {
      logged = await openLoggedDataSource();
      const writer = new WriterConnection(logged.dataSource, 1_000);
      const scope = new TransactionScope(
        { afterCommitError: () => undefined, committed: () => undefined, failed: () => undefined },
        { maxSize: 1, waitMs: 0, take: () => undefined, whenArrival: () => Promise.resolve(), yieldMode: 'never' },
      );
      const queued: string[] = [];
      const router = new WriteRouter(
        writer,
        scope,
        undefined,
        'serialize',
        (label) => {
          queued.push(label);
          return Promise.reject(new Error('not run in this spec'));
        },
        () => undefined,
      );
      router.install();
      await expect(logged.dataSource.query(INSERT, ['routed'])).rejects.toThrow('not run in this spec');
      router.uninstall();
      await logged.dataSource.query(INSERT, ['plain']);

      expect(queued).toEqual(['query(INSERT)']);
      expect(logged.writer).toEqual([inserted('plain')]); // TypeORM alone: autocommit, no BEGIN
    });
  });
});
