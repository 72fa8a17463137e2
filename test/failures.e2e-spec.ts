import { INestApplication } from '@nestjs/common';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { WriteCoordinator } from '@app/write-coordinator';
import { ItemHandlers } from './fixtures/item.handlers';
import { Item } from './fixtures/item.entity';
import { committedItems, tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';

/** Caps the file at its current size plus `pages`, so that larger writes fail with SQLITE_FULL. */
async function limitPages(dataSource: DataSource, pages: number): Promise<void> {
  const [{ page_count }] = (await dataSource.query('PRAGMA page_count')) as Array<{ page_count: number }>;
  await dataSource.query(`PRAGMA max_page_count = ${page_count + pages}`);
}

describe('WriteCoordinator when SQLite itself fails', () => {
  let tmp: ReturnType<typeof tempDir>;
  let app: INestApplication;
  let coordinator: WriteCoordinator;
  beforeEach(async () => {
    tmp = tempDir();
    app = await createTestingApp({
      database: tmp.file('full.db'),
      providers: [ItemHandlers],
      typeorm: { timeout: 50 }, // busy_timeout: how long a write waits for a lock held elsewhere
    });
    coordinator = app.get(WriteCoordinator);
  });
  afterEach(async () => {
    await app.close();
    tmp.cleanup();
  });

  it('fails writes on a full disk with nothing partial, then keeps committing once space returns', async () => {
    const dataSource = coordinator.dataSource!;
    await limitPages(dataSource, 2);
    const big = 'x'.repeat(20_000);
    const failed = await Promise.allSettled(
      Array.from({ length: 3 }, (_, i) =>
        coordinator.run(async (m) => {
          await m.insert(Item, { key: `small-${i}`, job: i, step: 1 });
          await m.insert(Item, { key: big + i, job: i, step: 2 });
        }),
      ),
    );
    expect(failed.map((s) => s.status === 'rejected' && String((s.reason as Error).message))).toEqual(
      Array(3).fill(expect.stringContaining('database or disk is full')),
    );
    expect(await committedItems(tmp.file('full.db'))).toHaveLength(0);

    await dataSource.query('PRAGMA max_page_count = 1073741823');
    // A rolled-back job followed by a committed one: both must end their transaction for real.
    await expect(coordinator.run(() => Promise.reject(new Error('user error')))).rejects.toThrow('user error');
    await coordinator.run((m) => m.insert(Item, { key: 'after', job: 9, step: 1 }));
    expect((await committedItems(tmp.file('full.db'))).map((i) => i.key)).toEqual(['after']);
    expect(dataSource.createQueryRunner().isTransactionActive).toBe(false);
  });

  it('fails a job that leaves a transaction level open, commits nothing of it, and carries on', async () => {
    await expect(
      coordinator.run(async (m) => {
        await m.insert(Item, { key: 'half', job: 1, step: 1 });
        await m.queryRunner!.startTransaction(); // never committed by the work
        await m.insert(Item, { key: 'nested', job: 1, step: 2 });
      }),
    ).rejects.toMatchObject({ code: 'INTERNAL', message: expect.stringContaining('left transaction levels open') });
    await coordinator.run((m) => m.insert(Item, { key: 'next', job: 2, step: 1 }));
    expect((await committedItems(tmp.file('full.db'))).map((i) => i.key)).toEqual(['next']);
  });

  it('maps a database locked by another connection to BUSY (retryable), writes nothing, and carries on', async () => {
    const other = new Database(tmp.file('full.db'));
    other.exec('BEGIN IMMEDIATE'); // holds the write lock, as another process would
    try {
      await expect(coordinator.submit({ method: 'item.add', params: { key: 'blocked' } })).rejects.toMatchObject({
        code: 'BUSY',
        retryable: true,
      });
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    await coordinator.submit({ method: 'item.add', params: { key: 'after' } });
    expect((await committedItems(tmp.file('full.db'))).map((i) => i.key)).toEqual(['after']);
  });
});
