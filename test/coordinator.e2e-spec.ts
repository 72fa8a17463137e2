import { AsyncLocalStorage } from 'node:async_hooks';
import { INestApplication } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { WriteCoordinator } from '@app/write-coordinator';
import { flush } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { committedItems, openDataSource, tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';

class JobFailure extends Error {
  constructor(readonly job: number) {
    super(`job ${job} failed after its first insert`);
  }
}

/** 50 jobs, two inserts each with an await in between; every fifth throws after its first insert. */
const JOBS = 50;
async function twoInserts(manager: DataSource['manager'], job: number): Promise<number> {
  await manager.insert(Item, { key: `${job}-1`, job, step: 1 });
  await flush();
  if (job % 5 === 4) throw new JobFailure(job);
  await manager.insert(Item, { key: `${job}-2`, job, step: 2 });
  return job;
}

describe('WriteCoordinator on a real SQLite file', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  describe('without the coordinator (what the module prevents)', () => {
    it('concurrent transactions on the shared connection fail or lose writes', async () => {
      const database = tmp.file('bare.db');
      const dataSource = await openDataSource(database);
      try {
        const settled = await Promise.allSettled(
          Array.from({ length: JOBS }, (_, job) => dataSource.transaction((manager) => twoInserts(manager, job))),
        );
        const foreignErrors = settled.filter((s) => s.status === 'rejected' && !(s.reason instanceof JobFailure));
        const rows = await committedItems(database);
        const successfulJobs = settled.filter((s) => s.status === 'fulfilled').length;
        // Observed with TypeORM 1.1.1: (nearly) every caller gets an error that is not its own
        // ("cannot start a transaction within a transaction"), yet rows of failed calls are committed.
        expect(foreignErrors.length).toBeGreaterThan(0);
        expect(rows.length).not.toBe(successfulJobs * 2);
      } finally {
        await dataSource.destroy();
      }
    });
  });

  describe('with the coordinator', () => {
    let app: INestApplication;
    let database: string;
    beforeEach(async () => {
      database = tmp.file('coordinated.db');
      app = await createTestingApp({ database });
    });
    afterEach(() => app.close());

    it.each([
      ['coordinator.run()', (c: WriteCoordinator, job: number) => c.run((manager) => twoInserts(manager, job))],
      [
        'un-decorated dataSource.transaction()',
        (c: WriteCoordinator, job: number) => c.dataSource!.transaction((manager) => twoInserts(manager, job)),
      ],
    ])(
      'through %s: commits exactly the 80 rows of the 40 successful jobs and hands each failure its own error',
      async (_, write) => {
        const coordinator = app.get(WriteCoordinator);
        const settled = await Promise.allSettled(Array.from({ length: JOBS }, (_, job) => write(coordinator, job)));
        settled.forEach((s, job) => {
          if (job % 5 === 4) {
            expect(s.status).toBe('rejected');
            expect((s as PromiseRejectedResult).reason).toBeInstanceOf(JobFailure);
            expect(((s as PromiseRejectedResult).reason as JobFailure).job).toBe(job);
          } else {
            expect(s).toEqual({ status: 'fulfilled', value: job });
          }
        });
        const rows = await committedItems(database);
        expect(rows).toHaveLength(80);
        const byJob = new Map<number, number[]>();
        for (const row of rows) byJob.set(row.job, [...(byJob.get(row.job) ?? []), row.step]);
        expect([...byJob.keys()].sort((a, b) => a - b)).toEqual(
          Array.from({ length: JOBS }, (_, job) => job).filter((job) => job % 5 !== 4),
        );
        for (const steps of byJob.values()) expect(steps).toEqual([1, 2]);
        expect(coordinator.metrics()).toMatchObject({
          accepted: 50,
          completed: 40,
          failed: 10,
          queueDepth: 0,
          running: 0,
        });
      },
    );

    it('rejects with the same error object the work threw and leaves nothing behind', async () => {
      const coordinator = app.get(WriteCoordinator);
      const mine = new Error('mine');
      await expect(
        coordinator.run(async (manager) => {
          await manager.insert(Item, { key: 'k', job: 1, step: 1 });
          throw mine;
        }),
      ).rejects.toBe(mine);
      expect(await committedItems(database)).toHaveLength(0);
    });

    it('rolls back, never commits, a job whose deadline passes while it runs', async () => {
      const coordinator = app.get(WriteCoordinator);
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const slow = coordinator.run(
        async (manager, job) => {
          await manager.insert(Item, { key: 'late', job: 1, step: 1 });
          await held;
          expect(job.signal.aborted).toBe(true);
          return 'finished anyway';
        },
        { timeoutMs: 30 },
      );
      const next = coordinator.run((manager) => manager.insert(Item, { key: 'next', job: 2, step: 1 }));
      await expect(slow).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true });
      release();
      await next;
      expect((await committedItems(database)).map((row) => row.key)).toEqual(['next']);
      expect(coordinator.metrics()).toMatchObject({ timedOut: 1, completed: 1 });
    });

    it('rolls back a job cancelled while running', async () => {
      const coordinator = app.get(WriteCoordinator);
      const controller = new AbortController();
      const job = coordinator.run(
        async (manager) => {
          await manager.insert(Item, { key: 'cancelled', job: 1, step: 1 });
          controller.abort();
          await flush();
          return 'done';
        },
        { signal: controller.signal },
      );
      await expect(job).rejects.toMatchObject({ code: 'CANCELLED' });
      await coordinator.onIdle();
      expect(await committedItems(database)).toHaveLength(0);
    });

    it("runs each job in its submitter's async context (request-scoped context stays the caller's)", async () => {
      const coordinator = app.get(WriteCoordinator);
      const requestContext = new AsyncLocalStorage<string>();
      const seen = await Promise.all(
        ['request-1', 'request-2', 'request-3'].map((id) =>
          requestContext.run(id, () =>
            coordinator.run(async () => {
              await flush();
              return requestContext.getStore();
            }),
          ),
        ),
      );
      expect(seen).toEqual(['request-1', 'request-2', 'request-3']);
    });

    it('runs re-entrant calls inline as savepoints instead of deadlocking', async () => {
      const coordinator = app.get(WriteCoordinator);
      const result = await coordinator.run(async (manager) => {
        await manager.insert(Item, { key: 'outer', job: 1, step: 1 });
        const inner = await coordinator.run((m) =>
          m.insert(Item, { key: 'inner', job: 1, step: 2 }).then(() => 'inner ok'),
        );
        await coordinator
          .run(async (m) => {
            await m.insert(Item, { key: 'rolled-back', job: 1, step: 3 });
            throw new Error('inner failure');
          })
          .catch(() => undefined);
        return inner;
      });
      expect(result).toBe('inner ok');
      expect((await committedItems(database)).map((row) => row.key)).toEqual(['outer', 'inner']);
      expect(coordinator.metrics()).toMatchObject({ accepted: 1, completed: 1 });
    });
  });
});
