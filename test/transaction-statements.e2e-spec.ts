import { WriteCoordinator } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { deferred, flush } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { tempDir } from './fixtures/temp-sqlite';
import { createTestingApp, useTestingApp } from './fixtures/testing-app';

const insertSql = 'INSERT INTO items (key, job, step) VALUES (?, 0, 0)';

/**
 * Issue 9, item 3: raw transaction control inside a job would commit (or roll back) the
 * coordinator's transaction half-way. It is refused with TRANSACTION_CONTROL, whatever its spelling.
 */
describe('raw transaction control inside a job', () => {
  const t = useTestingApp();

  const spellings = [
    'COMMIT',
    'commit transaction',
    'END',
    '  /* why not */ COMMIT',
    '-- a comment\nCOMMIT',
    'BEGIN',
    'BEGIN IMMEDIATE',
    'ROLLBACK',
    'SAVEPOINT mine',
    'RELEASE mine',
    'RELEASE SAVEPOINT mine',
  ];

  it.each(spellings)('refuses %j and the job commits its rows once, when it returns', async (sql) => {
    const c = t.coordinator;
    const seenMidJob: string[][] = [];
    const refusal = await c.run(async (m) => {
      await m.insert(Item, { key: 'before', job: 0, step: 0 });
      const error = await m.query(sql).then(
        () => undefined,
        (e: unknown) => e,
      );
      await m.query(insertSql, ['after']);
      seenMidJob.push(committedKeys(t.database)); // another connection: nothing may be committed yet
      return error;
    });
    expect(refusal).toMatchObject({ code: 'TRANSACTION_CONTROL', retryable: false });
    expect(seenMidJob).toEqual([[]]);
    expect(committedKeys(t.database)).toEqual(['before', 'after']);
  });

  it('refuses them on the raw fast path too (job.statement)', async () => {
    const error = await t.coordinator
      .run((_m, job) => {
        job.statement('COMMIT').run();
      })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TRANSACTION_CONTROL' });
  });

  it('leaves the neighbours of a batch untouched: only the job that sent COMMIT fails, nothing of it is written', async () => {
    const tmp = tempDir();
    const app = await createTestingApp({ database: tmp.file('batch.db'), coordinator: { maxBatchSize: 64 } });
    try {
      const c = app.get(WriteCoordinator);
      const release = deferred();
      const leader = c.run(async (m) => {
        await m.insert(Item, { key: 'leader', job: 0, step: 0 });
        await release.promise;
      });
      const rogue = c.run(async (m) => {
        await m.insert(Item, { key: 'rogue', job: 0, step: 0 });
        await m.query('COMMIT');
      });
      const neighbour = c.run((m) => m.insert(Item, { key: 'neighbour', job: 0, step: 0 }));
      await flush();
      release.resolve();
      const [l, r, n] = await Promise.allSettled([leader, rogue, neighbour]);
      expect(l.status).toBe('fulfilled');
      expect(r).toMatchObject({ status: 'rejected', reason: { code: 'TRANSACTION_CONTROL' } });
      expect(n.status).toBe('fulfilled');
      expect(committedKeys(tmp.file('batch.db'))).toEqual(['leader', 'neighbour']);
      expect(c.metrics().batches).toMatchObject({ committed: 1, jobs: 2 });
    } finally {
      await app.close();
      tmp.cleanup();
    }
  });
});

/**
 * Issue 9, item 4: a `WITH … INSERT` outside a job is a write whatever `readIsolation` says; it
 * must be queued as its own job, not run inside whichever job holds the connection.
 */
describe.each([true, false])('WITH … INSERT outside a job (readIsolation %s)', (readIsolation) => {
  const t = useTestingApp({ coordinator: { readIsolation } });

  it('is queued as its own job and survives the rollback of the job that held the connection', async () => {
    const c = t.coordinator;
    const release = deferred();
    const holder = c.run(async (m) => {
      await m.insert(Item, { key: 'holder', job: 0, step: 0 });
      await release.promise;
      throw new Error('the holder rolls back');
    });
    await flush();
    const cte = c.dataSource!.query(
      'WITH v(k) AS (SELECT ?) INSERT INTO items (key, job, step) SELECT k, 0, 0 FROM v',
      ['from-cte'],
    );
    let cteSettled = false;
    void cte.finally(() => (cteSettled = true));
    await flush();
    expect(cteSettled).toBe(false); // it waits for the drain instead of running inside the holder
    release.resolve();
    await expect(holder).rejects.toThrow('the holder rolls back');
    await cte;
    expect(committedKeys(t.database)).toEqual(['from-cte']);
  });
});
