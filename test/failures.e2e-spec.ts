import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { WriteCoordinatorHealthIndicator } from '@app/write-coordinator';
import { ItemHandlers } from './fixtures/item.handlers';
import { Item } from './fixtures/item.entity';
import { committedItems } from './fixtures/temp-sqlite';
import { useTestingApp } from './fixtures/testing-app';

/** Caps the file at its current size plus `pages`, so that larger writes fail with SQLITE_FULL. */
async function limitPages(dataSource: DataSource, pages: number): Promise<void> {
  const [{ page_count }] = (await dataSource.query('PRAGMA page_count')) as Array<{ page_count: number }>;
  await dataSource.query(`PRAGMA max_page_count = ${page_count + pages}`);
}

describe('WriteCoordinator when SQLite itself fails', () => {
  const t = useTestingApp({
    providers: [ItemHandlers],
    // how long a job waits in total for a write lock held elsewhere
    coordinator: { busyBudgetMs: 100 },
  });

  it('fails writes on a full disk with nothing partial, then keeps committing once space returns', async () => {
    const dataSource = t.coordinator.dataSource!;
    await limitPages(dataSource, 2);
    const big = 'x'.repeat(20_000);
    const failed = await Promise.allSettled(
      Array.from({ length: 3 }, (_, i) =>
        t.coordinator.run(async (m) => {
          await m.insert(Item, { key: `small-${i}`, job: i, step: 1 });
          await m.insert(Item, { key: big + i, job: i, step: 2 });
        }),
      ),
    );
    expect(failed.map((s) => s.status === 'rejected' && String((s.reason as Error).message))).toEqual(
      Array(3).fill(expect.stringContaining('database or disk is full')),
    );
    expect(await committedItems(t.database)).toHaveLength(0);
    const indicator = t.app.get(WriteCoordinatorHealthIndicator);
    await expect(indicator.isHealthy('writes')).resolves.toMatchObject({
      writes: {
        status: 'down',
        reason: expect.stringContaining('SQLITE_FULL'),
        storage: { failing: true, consecutiveFailures: 3, totalFailures: 3, lastError: { code: 'SQLITE_FULL' } },
      },
    });

    await dataSource.query('PRAGMA max_page_count = 1073741823');
    // A rolled-back job followed by a committed one: both must end their transaction for real.
    await expect(t.coordinator.run(() => Promise.reject(new Error('user error')))).rejects.toThrow('user error');
    await t.coordinator.run((m) => m.insert(Item, { key: 'after', job: 9, step: 1 }));
    expect((await committedItems(t.database)).map((i) => i.key)).toEqual(['after']);
    expect(dataSource.createQueryRunner().isTransactionActive).toBe(false);
    // A user error is not a storage failure; the next commit brings the indicator back up.
    await expect(indicator.isHealthy('writes')).resolves.toMatchObject({
      writes: { status: 'up', storage: { failing: false, consecutiveFailures: 0, totalFailures: 3 } },
    });
  });

  it('fails a job that leaves a transaction level open, commits nothing of it, and carries on', async () => {
    await expect(
      t.coordinator.run(async (m) => {
        await m.insert(Item, { key: 'half', job: 1, step: 1 });
        await m.queryRunner!.startTransaction(); // never committed by the work
        await m.insert(Item, { key: 'nested', job: 1, step: 2 });
      }),
    ).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining('left transaction levels open') });
    await t.coordinator.run((m) => m.insert(Item, { key: 'next', job: 2, step: 1 }));
    expect((await committedItems(t.database)).map((i) => i.key)).toEqual(['next']);
  });

  it('maps a database locked by another connection to BUSY (retryable), writes nothing, and carries on', async () => {
    const other = new Database(t.database);
    other.exec('BEGIN IMMEDIATE'); // holds the write lock, as another process would
    try {
      await expect(t.coordinator.submit({ method: 'item.add', params: { key: 'blocked' } })).rejects.toMatchObject({
        code: 'BUSY',
        retryable: true,
      });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await t.coordinator.submit({ method: 'item.add', params: { key: 'after' } });
    expect((await committedItems(t.database)).map((i) => i.key)).toEqual(['after']);
  });
});
