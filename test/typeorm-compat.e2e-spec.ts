import Database from 'better-sqlite3';
import { DataSource, QueryFailedError, TableColumn, TransactionNotStartedError, TypeORMError } from 'typeorm';
import { committedKeys } from './fixtures/committed-rows';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { sqliteOptions, tempDir } from './fixtures/temp-sqlite';
import { useTestingApp } from './fixtures/testing-app';

/** Where TypeORM's own functional tests disagreed with the module: the same calls, with and without it. */

/** Column names of a table as committed on disk, read through a connection of its own. */
function columnsOf(database: string, table: string): string[] {
  const db = new Database(database, { readonly: true });
  try {
    return (db.prepare(`PRAGMA table_info("${table}")`).all() as Array<{ name: string }>).map((c) => c.name);
  } finally {
    db.close();
  }
}

function countOf(database: string, table: string): number {
  const db = new Database(database, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM "${table}"`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const extraColumn = () => new TableColumn({ name: 'extra', type: 'varchar', isNullable: true });

describe("the shared query runner keeps TypeORM's state across jobs", () => {
  const t = useTestingApp();
  const ds = () => t.coordinator.dataSource!;

  beforeEach(async () => {
    await ds().query('CREATE TABLE "notes" ("id" integer PRIMARY KEY, "body" varchar)');
  });

  it('executeMemoryDownSql() reverts a schema change made outside a job (one job per DDL statement)', async () => {
    const runner = ds().createQueryRunner();
    await runner.addColumn('notes', extraColumn());
    expect(columnsOf(t.database, 'notes')).toEqual(['id', 'body', 'extra']);

    await runner.executeMemoryDownSql();
    expect(columnsOf(t.database, 'notes')).toEqual(['id', 'body']);
  });

  it('executeMemoryDownSql() reverts a schema change made inside a job', async () => {
    await t.coordinator.run((manager) => manager.queryRunner!.addColumn('notes', extraColumn()));
    expect(columnsOf(t.database, 'notes')).toEqual(['id', 'body', 'extra']);

    await ds().createQueryRunner().executeMemoryDownSql();
    expect(columnsOf(t.database, 'notes')).toEqual(['id', 'body']);
  });

  it('keeps SQL recorded in memory mode across jobs', async () => {
    const runner = ds().createQueryRunner();
    runner.enableSqlMemory();
    try {
      await runner.addColumn('notes', extraColumn()); // recorded, not run
      await t.coordinator.run((m) => m.query('INSERT INTO "notes" ("body") VALUES (?)', ['a job in between']));
      expect(runner.getMemorySql().upQueries.length).toBeGreaterThan(0);
    } finally {
      runner.disableSqlMemory();
    }
    expect(columnsOf(t.database, 'notes')).toEqual(['id', 'body']);
  });

  it('forgets the loaded tables when dataSource.transaction() ends, as TypeORM does: DDL it rolled back is not cached', async () => {
    await ds()
      .transaction(async (m) => {
        await m.queryRunner!.addColumn('notes', extraColumn());
        throw new Error('rolled back with its DDL');
      })
      .catch(() => undefined);
    const other = new TableColumn({ name: 'other', type: 'varchar', isNullable: true });
    await ds().createQueryRunner().addColumn('notes', other); // by name: from the loaded tables
    expect(columnsOf(t.database, 'notes')).toEqual(['id', 'body', 'other']);
  });

  it('renames the same Table object twice (TypeORM updates the loaded table it returned)', async () => {
    const runner = ds().createQueryRunner();
    const table = (await runner.getTable('notes'))!;
    await runner.renameColumn(table, 'body', 'text');
    await runner.renameColumn(table, 'text', 'content');
    expect(columnsOf(t.database, 'notes')).toEqual(['id', 'content']);
  });
});

describe('a held transaction whose COMMIT fails', () => {
  const t = useTestingApp();
  const ds = () => t.coordinator.dataSource!;

  beforeEach(async () => {
    await ds().query('CREATE TABLE "parent" ("id" integer PRIMARY KEY)');
    await ds().query(
      'CREATE TABLE "child" ("id" integer PRIMARY KEY, ' +
        '"parentId" integer REFERENCES "parent" ("id") DEFERRABLE INITIALLY DEFERRED)',
    );
  });

  /** TypeORM's documented pattern: commit, or roll back and rethrow. */
  async function insertOrphan(): Promise<void> {
    const runner = ds().createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      await runner.query('INSERT INTO "child" ("id", "parentId") VALUES (1, 42)'); // checked at COMMIT
      await runner.commitTransaction();
    } catch (error) {
      await runner.rollbackTransaction();
      throw error;
    } finally {
      await runner.release();
    }
  }

  it("lets its caller roll back quietly, so the caller rethrows the COMMIT's foreign-key error, TypeORM's own", async () => {
    const error = (await insertOrphan().then(
      () => undefined,
      (e: unknown) => e,
    )) as Error & { cause?: unknown };
    expect(error).not.toBeInstanceOf(TransactionNotStartedError);
    expect(error.message).toMatch(/FOREIGN KEY constraint failed/);
    expect(error).toBeInstanceOf(QueryFailedError); // as plain TypeORM gives it
    expect(countOf(t.database, 'child')).toBe(0);

    // The context that ended it, and the drain, are free again.
    await ds().query('INSERT INTO "parent" ("id") VALUES (42)');
    await insertOrphan();
    expect(countOf(t.database, 'child')).toBe(1);
  });

  it('inside a job, the savepoint of a nested startTransaction() releases and the job fails at COMMIT', async () => {
    const run = t.coordinator.run(async () => {
      const runner = ds().createQueryRunner();
      await runner.startTransaction();
      await runner.query('INSERT INTO "child" ("id", "parentId") VALUES (1, 42)');
      await runner.commitTransaction(); // RELEASE: SQLite checks deferred keys only at the top-level COMMIT
    });
    await expect(run).rejects.toMatchObject({ code: 'INTERNAL', message: /FOREIGN KEY constraint failed/ });
    expect(countOf(t.database, 'child')).toBe(0);
  });
});

describe('isolation levels are validated as TypeORM does', () => {
  const t = useTestingApp();
  const ds = () => t.coordinator.dataSource!;
  const insert = (m: { getRepository: DataSource['getRepository'] }, key: string) =>
    m.getRepository(Item).insert({ key, job: 0, step: 1 });
  const unsupported = ['READ COMMITTED', 'REPEATABLE READ', 'SNAPSHOT'] as const;

  it('plain TypeORM refuses the levels SQLite does not support (the reference)', async () => {
    const tmp = tempDir();
    const plain = await new DataSource(sqliteOptions(tmp.file('plain.db'))).initialize();
    try {
      for (const level of unsupported) {
        await expect(plain.transaction(level, (m) => insert(m, level))).rejects.toThrow(
          new TypeORMError(`${level} isolation level is not supported`),
        );
      }
    } finally {
      await plain.destroy();
      tmp.cleanup();
    }
  });

  it.each(unsupported)('refuses transaction(%p, fn) outside a job, without running fn', async (level) => {
    const work = jest.fn((m) => insert(m, 'refused'));
    await expect(ds().transaction(level, work)).rejects.toThrow(`${level} isolation level is not supported`);
    await expect(ds().manager.transaction(level, work)).rejects.toThrow(`${level} isolation level is not supported`);
    expect(work).not.toHaveBeenCalled();
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 0 });
    expect(committedKeys(t.database)).toEqual([]);
  });

  it.each(unsupported)('refuses queryRunner.startTransaction(%p) outside a job, holding nothing', async (level) => {
    const runner = ds().createQueryRunner();
    await runner.connect();
    await expect(runner.startTransaction(level)).rejects.toThrow(`${level} isolation level is not supported`);
    await insert(ds(), 'after'); // not part of any transaction: committed on its own
    expect(committedKeys(t.database)).toEqual(['after']);
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 1, completed: 1 });
  });

  it('refuses them inside a job too; the job goes on and commits its own writes', async () => {
    await t.coordinator.run(async (m) => {
      await insert(m, 'own');
      await expect(ds().transaction('READ COMMITTED', (inner) => insert(inner, 'refused'))).rejects.toThrow(
        'READ COMMITTED isolation level is not supported',
      );
      await expect(m.queryRunner!.startTransaction('REPEATABLE READ')).rejects.toThrow(
        'REPEATABLE READ isolation level is not supported',
      );
    });
    expect(committedKeys(t.database)).toEqual(['own']);
  });

  it('accepts the supported levels, inside and outside jobs', async () => {
    await ds().transaction('SERIALIZABLE', (m) => insert(m, 'serializable'));
    await ds().transaction('READ UNCOMMITTED', (m) => insert(m, 'read-uncommitted'));
    await t.coordinator.run(() => ds().transaction('SERIALIZABLE', (m) => insert(m, 'nested')));
    const runner = ds().createQueryRunner();
    await runner.connect();
    await runner.startTransaction('SERIALIZABLE');
    await insert(runner.manager, 'held');
    await runner.commitTransaction();
    expect(committedKeys(t.database)).toEqual(['serializable', 'read-uncommitted', 'nested', 'held']);
  });
});

describe('a failed write outside a job keeps its call site', () => {
  const t = useTestingApp();
  const repo = () => t.coordinator.dataSource!.getRepository(Item);

  async function duplicateInsertFromThisFile(): Promise<Error> {
    return repo()
      .insert({ key: 'dup', job: 0, step: 2 })
      .then(
        () => {
          throw new Error('expected a UNIQUE violation');
        },
        (e: Error) => e,
      );
  }

  it("when the drain is idle: the error is TypeORM's, with the caller's frames in its stack", async () => {
    await repo().insert({ key: 'dup', job: 0, step: 1 });
    const error = await duplicateInsertFromThisFile();
    expect(error).toBeInstanceOf(QueryFailedError);
    expect(error.message).toMatch(/UNIQUE constraint failed/);
    expect(error.stack).toContain('duplicateInsertFromThisFile');
    expect(error.stack).toContain('typeorm-compat.e2e-spec.ts');
    expect(submittedFrom(error.stack)).not.toMatch(/write-coordinator[\\/]src/); // the library's own frames are left out
  });

  it('when it waited in the queue behind another job', async () => {
    await repo().insert({ key: 'dup', job: 0, step: 1 });
    const release = deferred();
    const holder = t.coordinator.run(() => release.promise);
    const failing = duplicateInsertFromThisFile();
    release.resolve();
    await holder;
    const error = await failing;
    expect(error).toBeInstanceOf(QueryFailedError);
    expect(error.stack).toContain('duplicateInsertFromThisFile');
    expect(error.stack).toContain('typeorm-compat.e2e-spec.ts');
    expect(submittedFrom(error.stack)).not.toMatch(/write-coordinator[\\/]src/); // the library's own frames are left out
  });
});

/** The frames appended under `at <submitted from>`: the caller's, none of the library's. */
function submittedFrom(stack: string | undefined): string {
  const at = stack?.indexOf('at <submitted from>') ?? -1;
  return at < 0 ? '' : stack!.slice(at);
}
