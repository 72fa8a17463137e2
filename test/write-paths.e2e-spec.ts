import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { DataSource, DeepPartial } from 'typeorm';
import { WriteCoordinator } from '@app/write-coordinator';
import { CommittedRow, committedRows } from './fixtures/committed-rows';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { Tag } from './fixtures/tag.entity';
import { openDataSource, tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';

const row = (key: string, step = 1): DeepPartial<Item> => ({ key, job: 0, step });
const repo = (ds: DataSource) => ds.getRepository(Item);
const find = (rows: CommittedRow[], key: string) => rows.filter((r) => r.key === key);
/** Exactly one live row `key` (with `step`, when given). */
const hasOnce =
  (key: string, step?: number) =>
  (rows: CommittedRow[]): boolean => {
    const found = find(rows, key);
    return found.length === 1 && !found[0].deleted && (step === undefined || found[0].step === step);
  };
const gone = (key: string) => (rows: CommittedRow[]) => find(rows, key).length === 0;
const softDeleted = (key: string) => (rows: CommittedRow[]) =>
  find(rows, key).length === 1 && find(rows, key)[0].deleted;
const all =
  (...checks: Array<(rows: CommittedRow[]) => boolean>) =>
  (rows: CommittedRow[]) =>
    checks.every((check) => check(rows));

/** One way application code writes with TypeORM, issued from outside any coordinator job. */
interface WritePath {
  name: string;
  /** Rows committed before the concurrent job starts. */
  seed?: Array<DeepPartial<Item>>;
  write(ds: DataSource): Promise<unknown>;
  /** True when the committed rows show the write's effect, exactly once. */
  applied(rows: CommittedRow[], database: string): boolean;
}

const PATHS: WritePath[] = [
  { name: 'Repository.save', write: (ds) => repo(ds).save(repo(ds).create(row('p'))), applied: hasOnce('p') },
  { name: 'EntityManager.save', write: (ds) => ds.manager.save(Item, row('p')), applied: hasOnce('p') },
  { name: 'Repository.insert', write: (ds) => repo(ds).insert(row('p')), applied: hasOnce('p') },
  { name: 'EntityManager.insert', write: (ds) => ds.manager.insert(Item, row('p')), applied: hasOnce('p') },
  {
    name: 'Repository.upsert',
    seed: [row('p', 1)],
    write: (ds) => repo(ds).upsert(row('p', 5), ['key']),
    applied: hasOnce('p', 5),
  },
  {
    name: 'Repository.update',
    seed: [row('p', 1)],
    write: (ds) => repo(ds).update({ key: 'p' }, { step: 7 }),
    applied: hasOnce('p', 7),
  },
  {
    name: 'Repository.increment',
    seed: [row('p', 1)],
    write: (ds) => repo(ds).increment({ key: 'p' }, 'step', 1),
    applied: hasOnce('p', 2),
  },
  {
    name: 'EntityManager.decrement',
    seed: [row('p', 1)],
    write: (ds) => ds.manager.decrement(Item, { key: 'p' }, 'step', 1),
    applied: hasOnce('p', 0),
  },
  { name: 'Repository.delete', seed: [row('p')], write: (ds) => repo(ds).delete({ key: 'p' }), applied: gone('p') },
  {
    name: 'Repository.remove',
    seed: [row('p')],
    write: async (ds) => repo(ds).remove(await repo(ds).findOneByOrFail({ key: 'p' })),
    applied: gone('p'),
  },
  {
    name: 'Repository.softDelete',
    seed: [row('p')],
    write: (ds) => repo(ds).softDelete({ key: 'p' }),
    applied: softDeleted('p'),
  },
  {
    name: 'Repository.softRemove',
    seed: [row('p')],
    write: async (ds) => repo(ds).softRemove(await repo(ds).findOneByOrFail({ key: 'p' })),
    applied: softDeleted('p'),
  },
  {
    name: 'Repository.restore',
    seed: [{ ...row('p'), deletedAt: new Date() }],
    write: (ds) => repo(ds).restore({ key: 'p' }),
    applied: hasOnce('p'),
  },
  {
    name: 'Repository.clear',
    seed: [row('p'), row('q')],
    write: (ds) => repo(ds).clear(),
    applied: (r) => r.length === 0,
  },
  {
    name: 'InsertQueryBuilder.execute',
    write: (ds) => ds.createQueryBuilder().insert().into(Item).values(row('p')).execute(),
    applied: hasOnce('p'),
  },
  {
    name: 'UpdateQueryBuilder.execute',
    seed: [row('p', 1)],
    write: (ds) => ds.createQueryBuilder().update(Item).set({ step: 9 }).where('key = :key', { key: 'p' }).execute(),
    applied: hasOnce('p', 9),
  },
  {
    name: 'DeleteQueryBuilder.execute',
    seed: [row('p')],
    write: (ds) => ds.createQueryBuilder().delete().from(Item).where('key = :key', { key: 'p' }).execute(),
    applied: gone('p'),
  },
  {
    name: 'SoftDeleteQueryBuilder.execute',
    seed: [row('p')],
    write: (ds) => ds.createQueryBuilder().softDelete().from(Item).where('key = :key', { key: 'p' }).execute(),
    applied: softDeleted('p'),
  },
  {
    name: 'DataSource.transaction(fn)',
    write: (ds) => ds.transaction((m) => m.insert(Item, [row('p'), row('p2')])),
    applied: all(hasOnce('p'), hasOnce('p2')),
  },
  {
    name: 'DataSource.transaction(isolationLevel, fn)',
    write: (ds) => ds.transaction('SERIALIZABLE', (m) => m.insert(Item, [row('p'), row('p2')])),
    applied: all(hasOnce('p'), hasOnce('p2')),
  },
  {
    name: 'EntityManager.transaction(fn)',
    write: (ds) => ds.manager.transaction(async (m) => m.getRepository(Item).save([row('p'), row('p2')])),
    applied: all(hasOnce('p'), hasOnce('p2')),
  },
  {
    name: 'QueryRunner.startTransaction … commitTransaction',
    write: async (ds) => {
      const runner = ds.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      try {
        await runner.manager.insert(Item, row('p'));
        await runner.query('INSERT INTO items ("key", "job", "step") VALUES (?, 0, 1)', ['p2']);
        await runner.commitTransaction();
      } catch (error) {
        await runner.rollbackTransaction();
        throw error;
      } finally {
        await runner.release();
      }
    },
    applied: all(hasOnce('p'), hasOnce('p2')),
  },
  {
    name: 'RelationQueryBuilder.set',
    seed: [row('p')],
    write: async (ds) => {
      await ds.getRepository(Tag).insert({ name: 'first' }); // the tag and its link: two jobs, in order
      await ds.createQueryBuilder().relation(Tag, 'item').of({ id: 1 }).set({ id: 1 });
    },
    applied: (_, database) => {
      const db = new Database(database, { readonly: true });
      try {
        return JSON.stringify(db.prepare('SELECT name, itemId FROM tags').all()) === '[{"name":"first","itemId":1}]';
      } finally {
        db.close();
      }
    },
  },
  {
    name: 'DataSource.query (INSERT)',
    write: (ds) => ds.query('INSERT INTO items ("key", "job", "step") VALUES (?, ?, ?)', ['p', 0, 1]),
    applied: hasOnce('p'),
  },
  {
    name: 'EntityManager.query (UPDATE)',
    seed: [row('p', 1)],
    write: (ds) => ds.manager.query('UPDATE items SET step = step + 1 WHERE key = ?', ['p']),
    applied: hasOnce('p', 2),
  },
];

/** What became of the outside write once the concurrent job rolled back. */
type Outcome = 'committed once' | 'lost' | `failed: ${string}`;

/**
 * Runs `path` from outside any job while `openJob` holds a transaction that has written
 * `job-row` and then throws; returns what became of the write.
 */
async function raceWithFailingJob(
  database: string,
  ds: DataSource,
  path: WritePath,
  openJob: (work: (insertJobRow: () => Promise<unknown>) => Promise<void>) => Promise<unknown>,
): Promise<Outcome> {
  if (path.seed) await repo(ds).insert(path.seed);
  const started = deferred();
  const release = deferred();
  const job = openJob(async (insertJobRow) => {
    await insertJobRow();
    started.resolve();
    await release.promise;
    throw new Error('the job fails after the outside write was issued');
  });
  await started.promise;
  const outside = path.write(ds).then(
    () => undefined,
    (error: unknown) => error as Error,
  );
  await sleep(20); // long enough for an unserialised write to land inside the open transaction
  release.resolve();
  await job.then(
    () => undefined,
    () => undefined,
  );
  const error = await outside;
  const rows = committedRows(database);
  expect(rows.map((r) => r.key)).not.toContain('job-row');
  if (error) return `failed: ${error.message}`;
  return path.applied(rows, database) ? 'committed once' : 'lost';
}

describe('every TypeORM write path, issued outside a job while a job that later throws is open', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  describe.each(PATHS)('$name', (path) => {
    it('without the module: is lost with the job or fails', async () => {
      const database = tmp.file('plain.db');
      const ds = await openDataSource(database);
      try {
        const outcome = await raceWithFailingJob(database, ds, path, (work) =>
          ds.transaction((m) => work(() => m.insert(Item, row('job-row')))),
        );
        expect(outcome).not.toBe('committed once');
      } finally {
        await ds.destroy();
      }
    });

    it('with the module: is committed exactly once, untouched by the rollback', async () => {
      const database = tmp.file('coordinated.db');
      const app = await createTestingApp({ database });
      try {
        const coordinator = app.get(WriteCoordinator);
        const outcome = await raceWithFailingJob(database, coordinator.dataSource!, path, (work) =>
          coordinator.run((m) => work(() => m.insert(Item, row('job-row')))),
        );
        expect(outcome).toBe('committed once');
        expect(coordinator.metrics()).toMatchObject({ failed: 1, queueDepth: 0, running: 0 });
      } finally {
        await app.close();
      }
    });
  });
});
