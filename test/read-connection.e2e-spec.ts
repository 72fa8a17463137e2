import type { Database } from 'better-sqlite3';
import type { DataSource } from 'typeorm';
import type { WriteCoordinator } from '@app/write-coordinator';
import { buildCollationExtension } from './fixtures/collation-extension';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { Note } from './fixtures/note.entity';
import { Tag } from './fixtures/tag.entity';
import { createTestingApp, useTestingApp } from './fixtures/testing-app';
import { tempDir } from './fixtures/temp-sqlite';

/** `readonly` of every connection the hook ran on, in order. */
let hookedConnections: boolean[] = [];
beforeEach(() => (hookedConnections = []));

const twice = (db: Database) => db.function('twice', (n: number) => n * 2);

/** Runs `reads` while a job has inserted an item and a note and not committed them. */
async function readDuringOpenJob(coordinator: WriteCoordinator, reads: () => Promise<void>): Promise<void> {
  const written = deferred();
  const release = deferred();
  const job = coordinator.run(async (m) => {
    await m.insert(Item, { key: 'uncommitted', job: 1, step: 1 });
    await m.insert(Note, { text: 'uncommitted' });
    written.resolve();
    await release.promise;
  });
  await written.promise;
  try {
    await reads();
  } finally {
    release.resolve();
  }
  await job;
}

/** Runs `read` and returns its result with how many jobs completed meanwhile (0: the read connection answered). */
async function counted<T>(coordinator: WriteCoordinator, read: () => Promise<T>): Promise<[T, number]> {
  const before = coordinator.metrics().completed;
  const result = await read();
  return [result, coordinator.metrics().completed - before];
}

describe('the read connection runs the prepareDatabase hook', () => {
  describe.each([
    [
      'a synchronous hook',
      (db: Database) => {
        hookedConnections.push(db.readonly);
        twice(db);
      },
    ],
    [
      'an async hook',
      async (db: Database) => {
        await new Promise((resolve) => setImmediate(resolve));
        hookedConnections.push(db.readonly);
        twice(db);
      },
    ],
  ])('with %s', (_, prepareDatabase) => {
    const t = useTestingApp({ typeorm: { prepareDatabase } });

    it('on both connections, so a custom function works in a read outside a job, with no job', async () => {
      const ds = t.coordinator.dataSource!;
      await t.coordinator.run((m) => m.insert(Item, { key: 'a', job: 21, step: 1 }));
      expect(await counted(t.coordinator, () => ds.query('SELECT twice(job) AS v FROM items'))).toEqual([
        [{ v: 42 }],
        0,
      ]);
      expect(hookedConnections).toEqual([false, true]);
    });
  });

  describe('loading an extension that defines a collation', () => {
    const build = tempDir('wc-ext-');
    let extension = '';
    beforeAll(() => (extension = buildCollationExtension(build.dir)));
    afterAll(() => build.cleanup());
    const t = useTestingApp({ typeorm: { prepareDatabase: (db: Database) => db.loadExtension(extension) } });

    it('the collation works in a read outside a job', async () => {
      const ds = t.coordinator.dataSource!;
      await t.coordinator.run((m) =>
        m.insert(
          Item,
          ['b', 'a', 'c'].map((key) => ({ key, job: 1, step: 1 })),
        ),
      );
      const [rows, jobs] = await counted(t.coordinator, () =>
        ds.query('SELECT key FROM items ORDER BY key COLLATE REVERSE'),
      );
      expect({ rows, jobs }).toEqual({ rows: [{ key: 'c' }, { key: 'b' }, { key: 'a' }], jobs: 0 });
    });
  });

  it('fails the bootstrap with INVALID_OPTIONS naming prepareDatabase when the hook cannot run read-only', async () => {
    const tmp = tempDir();
    try {
      const seed = (db: Database) => db.exec('CREATE TABLE IF NOT EXISTS seed (v); INSERT INTO seed VALUES (1)');
      await expect(
        createTestingApp({ database: tmp.file('test.db'), typeorm: { prepareDatabase: seed } }),
      ).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'prepareDatabase' });
    } finally {
      tmp.cleanup();
    }
  });

  describe('with an async hook that rejects on the read connection', () => {
    const t = useTestingApp({
      typeorm: {
        prepareDatabase: async (db: Database) => {
          await new Promise((resolve) => setImmediate(resolve));
          if (db.readonly) throw new Error('writes a seed row');
        },
      },
    });

    it('reads outside a job fail with INVALID_OPTIONS naming prepareDatabase', async () => {
      await expect(t.coordinator.dataSource!.query('SELECT 1 AS one')).rejects.toMatchObject({
        code: 'INVALID_OPTIONS',
        field: 'prepareDatabase',
        message: expect.stringContaining('writes a seed row'),
      });
    });
  });
});

describe('TEMP tables (on the writing connection only)', () => {
  const t = useTestingApp();

  it('reads of a TEMP table outside a job are answered, and a WITH … INSERT into it runs as a job', async () => {
    const ds = t.coordinator.dataSource!;
    await ds.query('CREATE TEMP TABLE scratch (v TEXT)');
    await ds.query("INSERT INTO scratch VALUES ('a')");
    expect(await ds.query('SELECT v FROM scratch')).toEqual([{ v: 'a' }]);
    const [, jobs] = await counted(t.coordinator, () =>
      ds.query("WITH s(v) AS (VALUES ('b')) INSERT INTO scratch SELECT v FROM s"),
    );
    expect(jobs).toBe(1);
    expect(await ds.query('SELECT v FROM scratch ORDER BY v')).toEqual([{ v: 'a' }, { v: 'b' }]);
    expect(await ds.query('SELECT count(*) AS n FROM temp.scratch')).toEqual([{ n: 2 }]);
  });

  it('a TEMP table shadowing a main table is what a read sees, even for a statement read before it existed', async () => {
    const ds = t.coordinator.dataSource!;
    await t.coordinator.run((m) => m.insert(Item, { key: 'main', job: 1, step: 1 }));
    const read = () => ds.query('SELECT key FROM items');
    expect(await counted(t.coordinator, read)).toEqual([[{ key: 'main' }], 0]);
    await ds.query('CREATE TEMP TABLE items (key TEXT)');
    await ds.query("INSERT INTO temp.items VALUES ('temp')");
    expect(await read()).toEqual([{ key: 'temp' }]);
    expect(await ds.query("SELECT name FROM sqlite_temp_master WHERE type = 'table'")).toEqual([{ name: 'items' }]);
    await ds.query('DROP TABLE temp.items');
    expect(await counted(t.coordinator, read)).toEqual([[{ key: 'main' }], 0]);
  });

  it('a TEMP table rolled back with its job is forgotten, though the next one brings back its schema version', async () => {
    const ds = t.coordinator.dataSource!;
    await t.coordinator.run((m) => m.insert(Item, { key: 'main', job: 1, step: 1 }));
    const created = deferred();
    const release = deferred();
    const job = t.coordinator.run(async (m) => {
      await m.query('CREATE TEMP TABLE rolled_back (v TEXT)');
      created.resolve();
      await release.promise;
      throw new Error('roll it back');
    });
    await created.promise;
    expect(await ds.query('SELECT 1 AS one')).toEqual([{ one: 1 }]); // seen while the job is open
    release.resolve();
    await expect(job).rejects.toThrow('roll it back');
    await ds.query('CREATE TEMP TABLE items (key TEXT)');
    await ds.query("INSERT INTO temp.items VALUES ('temp')");
    expect(await ds.query('SELECT key FROM items')).toEqual([{ key: 'temp' }]);
    expect(await ds.query("SELECT name FROM sqlite_temp_master WHERE type = 'table'")).toEqual([{ name: 'items' }]);
  });

  it('a statement that fails on both connections gives the error it gives on the writer', async () => {
    const ds = t.coordinator.dataSource!;
    await expect(ds.query('SELECT missing FROM items')).rejects.toThrow('no such column: missing');
    await ds.query('CREATE TEMP TABLE scratch (v TEXT)');
    await expect(ds.query('SELECT missing FROM scratch')).rejects.toThrow('no such column: missing');
    await expect(ds.query('SELECT v FROM nowhere')).rejects.toThrow('no such table: nowhere');
  });
});

describe('schema set up on the writing connection after bootstrap', () => {
  const t = useTestingApp();

  it('a read using a function registered on the writer only runs there, as a job', async () => {
    const ds = t.coordinator.dataSource!;
    twice((ds.driver as unknown as { databaseConnection: Database }).databaseConnection);
    expect(await counted(t.coordinator, () => ds.query('SELECT twice(4) AS v'))).toEqual([[{ v: 8 }], 1]);
  });

  it('a read of a database ATTACHed later runs on the writer, as a job', async () => {
    const ds = t.coordinator.dataSource!;
    await ds.query('ATTACH ? AS extra', [t.database.replace(/test\.db$/, 'extra.db')]);
    await ds.query('CREATE TABLE extra.things (v TEXT)');
    await ds.query("INSERT INTO extra.things VALUES ('x')");
    expect(await counted(t.coordinator, () => ds.query('SELECT v FROM extra.things'))).toEqual([[{ v: 'x' }], 1]);
  });
});

describe('entities in another database (the entity `database` option)', () => {
  const t = useTestingApp({ typeorm: { entities: [Item, Tag, Note] } });

  it('are read outside a job from the same attached file, read-only, without a job', async () => {
    const ds: DataSource = t.coordinator.dataSource!;
    await t.coordinator.run((m) => m.insert(Note, { text: 'hello' }));
    const [notes, jobs] = await counted(t.coordinator, () => ds.getRepository(Note).find());
    expect({ notes: notes.map((n) => n.text), jobs }).toEqual({ notes: ['hello'], jobs: 0 });
    await t.coordinator.run((m) => m.insert(Note, { text: 'again' }));
    expect(await ds.getRepository(Note).count()).toBe(2);
  });
});

describe('read isolation with all of the above in place', () => {
  const t = useTestingApp({
    typeorm: { entities: [Item, Tag, Note], prepareDatabase: twice },
  });

  it("no read outside a job sees a running job's uncommitted rows, on main or on an attached database", async () => {
    const ds = t.coordinator.dataSource!;
    await ds.query('CREATE TEMP TABLE scratch (v TEXT)');
    await readDuringOpenJob(t.coordinator, async () => {
      expect(await ds.getRepository(Item).find()).toEqual([]);
      expect(await ds.query('SELECT twice(count(*)) AS n FROM items')).toEqual([{ n: 0 }]);
      expect(await ds.getRepository(Note).find()).toEqual([]);
    });
    expect(await ds.query('SELECT twice(count(*)) AS n FROM items')).toEqual([{ n: 2 }]);
    expect((await ds.getRepository(Note).find()).map((n) => n.text)).toEqual(['uncommitted']);
  });
});
