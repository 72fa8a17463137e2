import Database from 'better-sqlite3';
import { DataSource, EntityManager, Repository } from 'typeorm';
import { TypeOrmModule } from '@nestjs/typeorm';
import { WriteCoordinator, WriteCoordinatorEvents } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { setTimeout as sleep } from 'node:timers/promises';
import { flush } from './fixtures/deferred';
import { EventRecorder } from './fixtures/event.recorder';
import { Item } from './fixtures/item.entity';
import { ItemHandlers } from './fixtures/item.handlers';
import { ItemWriter } from './fixtures/item.writer';
import { useTestingApp } from './fixtures/testing-app';

/**
 * Issue 9, item 1: inside one job, a write at the job's own level made while a re-entrant call of
 * the same job has its savepoint open must not land in that savepoint (a ROLLBACK TO SAVEPOINT
 * would erase it although it resolved), and change events are published only for committed rows.
 */
describe('re-entrant calls and the writes of their own level', () => {
  const t = useTestingApp({
    imports: [TypeOrmModule.forFeature([Item])],
    providers: [ItemWriter, ItemHandlers, EventRecorder],
    // One job per transaction and batches of many: the savepoints differ, the promise does not.
    coordinator: { maxBatchSize: 1 },
  });

  const repo = (): Repository<Item> => t.coordinator.dataSource!.getRepository(Item);
  const item = (key: string): Partial<Item> => ({ key, job: 1, step: 1 });

  /** Each form of re-entrant call: writes a row, lets the event loop turn (its savepoint open), then throws. */
  const reentrant: Record<string, (c: WriteCoordinator, ds: DataSource, writer: ItemWriter) => Promise<unknown>> = {
    'coordinator.run()': (c) =>
      c.run(async (m) => {
        await m.insert(Item, item('inner'));
        await flush();
        throw new Error('inner fails');
      }),
    'dataSource.transaction()': (_c, ds) =>
      ds.transaction(async (m: EntityManager) => {
        await m.insert(Item, item('inner'));
        await flush();
        throw new Error('inner fails');
      }),
    'a @SerializedWrite method': (_c, _ds, writer) => writer.addPairThenFail('inner'),
    'submit()': (c) =>
      c.run(async (m) => {
        // submit() re-enters too; its handler succeeds, then the enclosing re-entrant call fails.
        await c.submit({ method: 'item.add', params: { key: 'inner' } });
        await flush();
        void m;
        throw new Error('inner fails');
      }),
  };

  it.each(Object.keys(reentrant))(
    'keeps a same-level save() made while %s has its savepoint open, when that call fails',
    async (form) => {
      const c = t.coordinator;
      const ds = c.dataSource!;
      const writer = t.app.get(ItemWriter);
      const outcome = await c.run(async () => {
        const [inner, own] = await Promise.allSettled([reentrant[form](c, ds, writer), repo().save(item('own'))]);
        return { inner: inner.status, own: own.status };
      });
      expect(outcome).toEqual({ inner: 'rejected', own: 'fulfilled' });
      expect(committedKeys(t.database)).toEqual(['own']);
    },
  );

  it('keeps a same-level save() made while a successful re-entrant call is open, and publishes exactly the committed rows', async () => {
    const c = t.coordinator;
    const recorder = t.app.get(EventRecorder);
    await c.run(async () => {
      await Promise.all([
        c
          .run(async (m) => {
            await m.insert(Item, item('rolled-back'));
            await flush();
            throw new Error('inner fails');
          })
          .catch(() => undefined),
        repo().save(item('kept-1')),
        c.run(async (m) => {
          await m.insert(Item, item('inner-kept'));
          await flush();
        }),
        repo().save(item('kept-2')),
      ]);
    });
    expect(committedKeys(t.database).sort()).toEqual(['inner-kept', 'kept-1', 'kept-2']);
    const db = new Database(t.database, { readonly: true });
    const committedIds = (db.prepare('SELECT id FROM items ORDER BY id').all() as Array<{ id: number }>).map(
      (r) => r.id,
    );
    db.close();
    const publishedIds = recorder.events
      .filter((e) => e.name === WriteCoordinatorEvents.Change && e.payload.operation === 'inserted')
      .map((e) => (e.payload.ids as { id: number }).id)
      .sort((a, b) => a - b);
    expect(publishedIds).toEqual(committedIds);
  });

  it('refuses a raw statement used at a level whose re-entrant call holds a savepoint, and keeps it usable inside that call', async () => {
    const c = t.coordinator;
    const insert = 'INSERT INTO items (key, job, step) VALUES (?, 0, 0)';
    const result = await c.run(async (_m, job) => {
      let insideOk = false;
      const inner = c.run(async (_m2, innerJob) => {
        await flush();
        innerJob.statement(insert).run('from-inner');
        insideOk = true;
        await flush();
      });
      await flush();
      let refused: unknown;
      try {
        job.statement(insert).run('from-outer-while-open');
      } catch (error) {
        refused = error;
      }
      await inner;
      job.statement(insert).run('from-outer-after');
      return { insideOk, refused: (refused as Error | undefined)?.message };
    });
    expect(result).toEqual({ insideOk: true, refused: expect.stringContaining('savepoint open') });
    expect(committedKeys(t.database).sort()).toEqual(['from-inner', 'from-outer-after']);
  });

  it('does not hold back a same-level read a re-entrant call is waiting for (a memoised read)', async () => {
    const c = t.coordinator;
    await repo().save(item('config'));
    let config: Promise<Item | null> | undefined;
    const loadConfig = () => (config ??= repo().findOneBy({ key: 'config' }));
    const outcome = await Promise.race([
      c.run(async () => {
        await Promise.all([
          c.run(async (m) => {
            await sleep(20); // its savepoint is open; the read below was issued by its parent level
            const found = await loadConfig();
            await m.insert(Item, item(`child-saw-${found?.key}`));
          }),
          sleep(5).then(loadConfig),
        ]);
        return 'done';
      }),
      sleep(5_000).then(() => 'deadlocked'),
    ]);
    expect(outcome).toBe('done');
    expect(committedKeys(t.database).sort()).toEqual(['child-saw-config', 'config']);
  });

  it('refuses a commitTransaction() at a re-entrant call’s own level: it would end the job’s transaction', async () => {
    const c = t.coordinator;
    const outcome = await c
      .run(async (m) => {
        await m.insert(Item, item('before'));
        const inner = await c
          .run((m2) => m2.queryRunner!.commitTransaction())
          .then(
            () => 'committed',
            (e: Error) => e.constructor.name,
          );
        expect(inner).toBe('TypeORMError');
        throw new Error('the job fails');
      })
      .catch((e: Error) => e.message);
    expect(outcome).toBe('the job fails');
    expect(committedKeys(t.database)).toEqual([]);
  });

  it('waits for a re-entrant call the work did not await: its writes commit with the job', async () => {
    const c = t.coordinator;
    const outcome = await c.run(async () => {
      void c.run(async (m) => {
        await sleep(50);
        await m.insert(Item, item('late-child'));
      });
      return 'returned';
    });
    expect(outcome).toBe('returned');
    expect(committedKeys(t.database)).toEqual(['late-child']);
  });
});
