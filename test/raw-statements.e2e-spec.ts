import type { Database } from 'better-sqlite3';
import { RawStatement } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { Item } from './fixtures/item.entity';
import { useTestingApp } from './fixtures/testing-app';

const INSERT = 'INSERT INTO items ("key", "job", "step") VALUES (?, ?, ?)';

describe('the raw fast path (job.statement)', () => {
  const t = useTestingApp();
  const writer = () =>
    (t.coordinator.dataSource!.driver as unknown as { databaseConnection: Database }).databaseConnection;

  it("runs in the job's transaction: it sees the job's TypeORM writes, and rolls back with the job", async () => {
    await expect(
      t.coordinator.run(async (m, job) => {
        await m.insert(Item, { key: 'typeorm', job: 1, step: 1 });
        job.statement(INSERT).run('raw', 1, 2);
        expect(job.statement('SELECT key FROM items ORDER BY id').all()).toEqual([{ key: 'typeorm' }, { key: 'raw' }]);
        throw new Error('job fails');
      }),
    ).rejects.toThrow('job fails');
    expect(committedKeys(t.database)).toEqual([]);

    const id = await t.coordinator.run((_, job) => Number(job.statement(INSERT).run('kept', 2, 1).lastInsertRowid));
    expect(id).toBe(1);
    expect(committedKeys(t.database)).toEqual(['kept']);
  });

  it('runs in the current savepoint: a failing re-entrant call rolls back only its own raw writes', async () => {
    await t.coordinator.run(async (_, job) => {
      job.statement(INSERT).run('outer', 1, 1);
      await t.coordinator
        .run((__, inner) => {
          inner.statement(INSERT).run('inner', 1, 2);
          throw new Error('savepoint fails');
        })
        .catch(() => undefined);
      expect(job.statement('SELECT COUNT(*) AS n FROM items').get()).toEqual({ n: 1 });
    });
    expect(committedKeys(t.database)).toEqual(['outer']);
  });

  it('prepares each SQL text once and reuses it across jobs', async () => {
    const prepare = jest.spyOn(writer(), 'prepare');
    for (let i = 0; i < 5; i++) await t.coordinator.run((_, job) => job.statement(INSERT).run(`k${i}`, i, 1));
    expect(prepare.mock.calls.filter(([sql]) => sql === INSERT)).toHaveLength(1);
    prepare.mockRestore();
    expect(committedKeys(t.database)).toHaveLength(5);
  });

  it('refuses to run after its job ended, instead of writing outside any transaction', async () => {
    let leaked: RawStatement | undefined;
    await t.coordinator.run((_, job) => {
      leaked = job.statement(INSERT);
    });
    expect(() => leaked!.run('late', 0, 0)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    expect(committedKeys(t.database)).toEqual([]);
  });
});
