/**
 * TransactionScope against a real SQLite file: the exact statements each kind of job sends.
 *
 * The log is better-sqlite3's `verbose` callback on the DataSource's connection
 * (`test/fixtures/statement-log.ts`), not a TypeORM logger: the scope opens, releases and rolls
 * back the savepoints of group-commit members with `connection.exec` (`WriterConnection`), which
 * TypeORM's logger never sees. The scope is built as `Coordinator` builds it (a real `WriteQueue`
 * feeding `runJob`, a real attachment whose router turns TypeORM's `BEGIN TRANSACTION` into
 * `BEGIN IMMEDIATE TRANSACTION`), without Nest and without `Coordinator`; its hooks are recorded.
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
import { TransactionScope } from './transaction-scope';

describe('TransactionScope', () => {
  let logged: LoggedDataSource;
  let layer: MiddleLayer;

  async function setUp(options: MiddleLayerOptions = {}): Promise<void> {
    logged = await openLoggedDataSource();
    layer = buildMiddleLayer(logged, options);
  }

  afterEach(async () => {
    await layer.close();
    await logged.close();
  });

  describe('with group commit on (the default)', () => {
    beforeEach(() => setUp());

    it('runs a lone job as a batch leader with no savepoint: BEGIN IMMEDIATE, its statements, COMMIT', async () => {
      await layer.run((m) => m.query(INSERT, ['a']));

      expect(logged.writer).toEqual([BEGIN, inserted('a'), 'COMMIT']);
      expect(layer.hooks).toEqual(['committed 1']);
      expect(committedKeys(logged.database)).toEqual(['a']);
    });

    it("logs TypeORM's own re-select after an entity insert (the Item entity has a delete-date column)", async () => {
      await layer.run((m) => m.insert(Item, { key: 'a', job: 1, step: 0 }));

      expect(logged.writer).toEqual([
        BEGIN,
        `INSERT INTO "items"("id", "key", "job", "step", "deletedAt") VALUES (NULL, 'a', 1, 0, NULL)`,
        `SELECT "Item"."id" AS "Item_id", "Item"."deletedAt" AS "Item_deletedAt" FROM "items" "Item" ` +
          `WHERE ( "Item"."id" = 1 ) AND ( "Item"."deletedAt" IS NULL )`,
        'COMMIT',
      ]);
    });

    it('rolls back a failed lone job with one ROLLBACK of the whole transaction', async () => {
      const boom = new Error('boom');
      const outcome = layer.run(async (m) => {
        await m.query(INSERT, ['a']);
        throw boom;
      });

      await expect(outcome).rejects.toBe(boom);
      expect(logged.writer).toEqual([BEGIN, inserted('a'), 'ROLLBACK']);
      expect(layer.hooks).toEqual(['failed boom']);
      expect(committedKeys(logged.database)).toEqual([]);
      expect(layer.writer.depth).toBe(0);
    });

    it('commits a batch without its failing member: the member alone is rolled back to its savepoint and fails first', async () => {
      const release = deferred();
      const settled: string[] = [];
      const leader = layer.run(async (m) => {
        await m.query(INSERT, ['leader']);
        await release.promise; // the others queue meanwhile
      });
      const rogue = layer.run(async (m) => {
        await m.query(INSERT, ['rogue']);
        throw new Error('rogue fails');
      });
      const neighbour = layer.run((m) => m.query(INSERT, ['neighbour']));
      for (const [name, job] of Object.entries({ leader, rogue, neighbour })) {
        job.then(
          () => settled.push(`${name} committed`),
          () => settled.push(`${name} failed`),
        );
      }
      await flush();
      release.resolve();
      await Promise.allSettled([leader, rogue, neighbour]);

      expect(logged.writer).toEqual([
        BEGIN,
        inserted('leader'), // the leader needs no savepoint: nothing else is in the transaction yet
        'SAVEPOINT typeorm_1',
        inserted('rogue'),
        'ROLLBACK TO SAVEPOINT typeorm_1', // one exec of two statements: SQLite's text of the first keeps its ';'
        'RELEASE SAVEPOINT typeorm_1',
        'SAVEPOINT typeorm_1',
        inserted('neighbour'),
        'RELEASE SAVEPOINT typeorm_1',
        'COMMIT',
      ]);
      expect(settled).toEqual(['rogue failed', 'leader committed', 'neighbour committed']);
      expect(layer.hooks).toEqual(['failed rogue fails', 'committed 2']);
      expect(committedKeys(logged.database)).toEqual(['leader', 'neighbour']);
    });

    it("runs a re-entrant call inline in TypeORM's next savepoint and commits it with the job", async () => {
      await layer.run(async (m) => {
        await m.query(INSERT, ['outer']);
        await layer.run((inner) => inner.query(INSERT, ['inner']));
        await m.query(INSERT, ['after']);
      });

      expect(logged.writer).toEqual([
        BEGIN,
        inserted('outer'),
        'SAVEPOINT typeorm_1',
        inserted('inner'),
        'RELEASE SAVEPOINT typeorm_1',
        inserted('after'),
        'COMMIT',
      ]);
      expect(layer.queue.metrics().accepted).toBe(1); // inline, never queued behind itself
      expect(committedKeys(logged.database)).toEqual(['outer', 'inner', 'after']);
    });

    it("rolls back a failing re-entrant call to its savepoint (TypeORM's ROLLBACK TO, no RELEASE) and the job commits the rest", async () => {
      await layer.run(async (m) => {
        await m.query(INSERT, ['outer']);
        await expect(
          layer.run(async (inner) => {
            await inner.query(INSERT, ['inner']);
            throw new Error('inner fails');
          }),
        ).rejects.toThrow('inner fails');
        await m.query(INSERT, ['after']);
      });

      expect(logged.writer).toEqual([
        BEGIN,
        inserted('outer'),
        'SAVEPOINT typeorm_1',
        inserted('inner'),
        'ROLLBACK TO SAVEPOINT typeorm_1', // typeorm_1 stays on SQLite's stack: 'after' runs inside it
        inserted('after'),
        'COMMIT', // ends it with the transaction
      ]);
      expect(layer.hooks).toEqual(['committed 1']);
      expect(committedKeys(logged.database)).toEqual(['outer', 'after']);
    });

    it('runs a held transaction as a job of its own, with no batch savepoint, committed when its caller commits', async () => {
      const scope: TransactionScope = layer.scope;
      // What the router does for queryRunner.startTransaction() outside a job.
      await scope.beginHeld(layer.writer, (run) => layer.queue.enqueue(run, { batchable: false }));
      await layer.writer.manager.query(INSERT, ['held']);
      expect(scope.heldTransaction()).toMatchObject({ open: true });
      expect(committedKeys(logged.database)).toEqual([]);
      await scope.heldTransaction()!.held.commit();

      expect(logged.writer).toEqual([BEGIN, inserted('held'), 'COMMIT']);
      expect(layer.hooks).toEqual(['committed 1']);
      expect(committedKeys(logged.database)).toEqual(['held']);
    });
  });

  describe('with group commit off (maxBatchSize 1)', () => {
    beforeEach(() => setUp({ maxBatchSize: 1 }));

    it('runs a job as BEGIN IMMEDIATE, its statements, COMMIT', async () => {
      await layer.run((m) => m.query(INSERT, ['a']));

      expect(logged.writer).toEqual([BEGIN, inserted('a'), 'COMMIT']);
      expect(layer.hooks).toEqual(['committed 1']);
    });

    it('rolls back a failed job with one ROLLBACK', async () => {
      await expect(
        layer.run(async (m) => {
          await m.query(INSERT, ['a']);
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');

      expect(logged.writer).toEqual([BEGIN, inserted('a'), 'ROLLBACK']);
      expect(layer.hooks).toEqual(['failed boom']);
    });
  });
});
