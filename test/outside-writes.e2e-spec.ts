import { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource, EntityManager, EntitySubscriberInterface, TransactionCommitEvent } from 'typeorm';
import { committedKeys } from './fixtures/committed-rows';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { useTestingApp } from './fixtures/testing-app';

const insert = (m: EntityManager | DataSource, key: string) => m.getRepository(Item).insert({ key, job: 0, step: 1 });

describe('TypeORM calls inside a job join its transaction', () => {
  const t = useTestingApp();

  it('both transaction() forms nest as savepoints; a failing one rolls back only itself', async () => {
    const ds = t.coordinator.dataSource!;
    await t.coordinator.run(async () => {
      await ds.getRepository(Item).save({ key: 'save', job: 0, step: 1 });
      await ds.transaction((m) => insert(m, 'tx'));
      await ds.transaction('SERIALIZABLE', (m) => insert(m, 'tx-serializable'));
      await ds.manager.transaction((m) => insert(m, 'manager-tx'));
      await ds
        .transaction(async (m) => {
          await insert(m, 'rolled-back-savepoint');
          throw new Error('only this savepoint rolls back');
        })
        .catch(() => undefined);
      await ds.query('INSERT INTO items ("key", "job", "step") VALUES (?, 0, 1)', ['raw']);
    });
    expect(committedKeys(t.database)).toEqual(['save', 'tx', 'tx-serializable', 'manager-tx', 'raw']);
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 1, completed: 1 });
  });

  it('rolls all of them back with the job', async () => {
    const ds = t.coordinator.dataSource!;
    await expect(
      t.coordinator.run(async () => {
        await ds.getRepository(Item).save({ key: 'save', job: 0, step: 1 });
        await ds.transaction((m) => insert(m, 'tx'));
        await ds.query('INSERT INTO items ("key", "job", "step") VALUES (?, 0, 1)', ['raw']);
        throw new Error('job fails');
      }),
    ).rejects.toThrow('job fails');
    expect(committedKeys(t.database)).toEqual([]);
  });

  it("lets TypeORM subscribers write in the job's transaction, even while it commits", async () => {
    const ds = t.coordinator.dataSource!;
    let audits = 0;
    const subscriber: EntitySubscriberInterface = {
      async beforeTransactionCommit(event: TransactionCommitEvent) {
        if (audits++ === 0) await insert(event.manager, 'audit');
      },
    };
    ds.subscribers.push(subscriber);
    try {
      await ds.getRepository(Item).save({ key: 'saved', job: 0, step: 1 }); // a transparent job
    } finally {
      ds.subscribers.splice(ds.subscribers.indexOf(subscriber), 1);
    }
    expect(committedKeys(t.database)).toEqual(['saved', 'audit']);
  });

  it("refuses to let a job's work end the job's own transaction", async () => {
    const ds = t.coordinator.dataSource!;
    await expect(t.coordinator.run(() => ds.createQueryRunner().commitTransaction())).rejects.toThrow(
      /would end the coordinator job's own transaction/,
    );
    await t.coordinator.run((m) => insert(m, 'after'));
    expect(committedKeys(t.database)).toEqual(['after']);
  });
});

describe('a transaction opened on the query runner outside a job', () => {
  const t = useTestingApp();

  /** Opens a transaction on the query runner in its own async function, as a service method would. */
  async function holdTransaction(ds: DataSource, key: string, end: Promise<'commit' | 'rollback'>) {
    const runner = ds.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      await insert(runner.manager, key);
      if ((await end) === 'commit') await runner.commitTransaction();
      else await runner.rollbackTransaction();
    } finally {
      await runner.release();
    }
  }

  it('holds the drain until it commits: a job submitted meanwhile runs after it', async () => {
    const end = deferred<'commit'>();
    const held = holdTransaction(t.coordinator.dataSource!, 'held', end.promise);
    await sleep(20);
    const queued = t.coordinator.run((m) => insert(m, 'queued'));
    await sleep(20);
    expect(t.coordinator.metrics()).toMatchObject({ running: 1, queueDepth: 1 });
    expect(committedKeys(t.database)).toEqual([]);
    end.resolve('commit');
    await Promise.all([held, queued]);
    expect(committedKeys(t.database)).toEqual(['held', 'queued']);
  });

  it('rolls back with nothing written', async () => {
    await holdTransaction(t.coordinator.dataSource!, 'held', Promise.resolve('rollback'));
    await t.coordinator.run((m) => insert(m, 'next'));
    expect(committedKeys(t.database)).toEqual(['next']);
    expect(t.coordinator.metrics()).toMatchObject({ completed: 1, failed: 1 });
  });

  it('the code after startTransaction() is inside it: a coordinator.run() there joins it', async () => {
    const ds = t.coordinator.dataSource!;
    const runner = ds.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    await t.coordinator.run((m) => insert(m, 'joined'));
    await runner.rollbackTransaction();
    expect(committedKeys(t.database)).toEqual([]);
  });
});

describe('a transaction opened on the query runner, past its deadline', () => {
  const t = useTestingApp({ coordinator: { timeoutMs: 50 } });

  it('is rolled back, and its later calls fail instead of writing on their own', async () => {
    const runner = t.coordinator.dataSource!.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    await insert(runner.manager, 'held');
    await sleep(100);
    await expect(insert(runner.manager, 'late')).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(
      runner.query('INSERT INTO items ("key", "job", "step") VALUES (?, 0, 1)', ['raw']),
    ).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(runner.commitTransaction()).rejects.toMatchObject({ code: 'TIMEOUT' });
    await t.coordinator.run((m) => insert(m, 'next'));
    expect(committedKeys(t.database)).toEqual(['next']);
  });
});

describe('writesOutsideJobs', () => {
  describe("'throw'", () => {
    const t = useTestingApp({ coordinator: { writesOutsideJobs: 'throw' } });

    it('refuses every kind of outside write with WRITE_OUTSIDE_JOB and writes nothing; jobs still write', async () => {
      const ds = t.coordinator.dataSource!;
      const refused = { code: 'WRITE_OUTSIDE_JOB', retryable: false };
      await expect(insert(ds, 'a')).rejects.toMatchObject({ ...refused, operation: 'EntityManager.insert' });
      await expect(ds.transaction((m) => insert(m, 'b'))).rejects.toMatchObject(refused);
      await expect(ds.query('INSERT INTO items ("key", "job", "step") VALUES (?, 0, 1)', ['c'])).rejects.toMatchObject(
        refused,
      );
      const runner = ds.createQueryRunner();
      await expect(runner.startTransaction()).rejects.toMatchObject(refused);
      await expect(ds.getRepository(Item).find()).resolves.toEqual([]); // reads are not writes
      await t.coordinator.run(() => insert(ds, 'inside'));
      expect(committedKeys(t.database)).toEqual(['inside']);
    });
  });

  describe("'warn'", () => {
    const t = useTestingApp({ coordinator: { writesOutsideJobs: 'warn' } });
    afterEach(() => jest.restoreAllMocks());

    it('serialises the write and warns once per operation, naming it', async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      const ds = t.coordinator.dataSource!;
      await Promise.all([insert(ds, 'a'), insert(ds, 'b'), ds.transaction((m) => insert(m, 'c'))]);
      expect(committedKeys(t.database)).toEqual(['a', 'b', 'c']);
      expect(t.coordinator.metrics()).toMatchObject({ completed: 3 });
      const messages = warn.mock.calls.map(([message]) => String(message));
      expect(messages).toEqual([
        expect.stringContaining('EntityManager.insert ran outside a coordinator job'),
        expect.stringContaining('EntityManager.transaction ran outside a coordinator job'),
      ]);
    });
  });

  describe("'off'", () => {
    const t = useTestingApp({ coordinator: { writesOutsideJobs: 'off' } });

    it('leaves outside writes to TypeORM alone: one issued during a failing job is lost with it', async () => {
      const ds = t.coordinator.dataSource!;
      const release = deferred();
      const job = t.coordinator.run(async (m) => {
        await insert(m, 'job-row');
        await release.promise;
        throw new Error('job fails');
      });
      await sleep(10);
      await insert(ds, 'outside');
      release.resolve();
      await expect(job).rejects.toThrow('job fails');
      expect(committedKeys(t.database)).toEqual([]);
    });
  });
});

describe('raw statements outside a job', () => {
  const t = useTestingApp();

  it('runs PRAGMAs on the writing connection outside any transaction', async () => {
    const ds = t.coordinator.dataSource!;
    // SQLite ignores `PRAGMA foreign_keys` inside a transaction: it takes effect only outside one.
    await ds.query('PRAGMA foreign_keys = OFF');
    expect(await ds.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 0 }]);
    await ds.query('PRAGMA user_version = 7');
    expect(await ds.query('PRAGMA user_version')).toEqual([{ user_version: 7 }]);
    await t.coordinator.run((m) => insert(m, 'after'));
    expect(committedKeys(t.database)).toEqual(['after']);
  });

  it('refuses transaction statements (BEGIN, COMMIT, …) with WRITE_OUTSIDE_JOB', async () => {
    const ds = t.coordinator.dataSource!;
    for (const sql of ['BEGIN', 'BEGIN IMMEDIATE', 'COMMIT', 'ROLLBACK', 'SAVEPOINT x', '  /* c */ end']) {
      await expect(ds.query(sql)).rejects.toMatchObject({ code: 'WRITE_OUTSIDE_JOB', operation: expect.any(String) });
    }
    await t.coordinator.run((m) => insert(m, 'after'));
    expect(committedKeys(t.database)).toEqual(['after']);
  });
});
