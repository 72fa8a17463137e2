import { EntityManager } from 'typeorm';
import { WriteCoordinator, WriteCoordinatorEvents } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { deferred } from './fixtures/deferred';
import { EventRecorder } from './fixtures/event.recorder';
import { Item } from './fixtures/item.entity';
import { createTestingApp, useTestingApp } from './fixtures/testing-app';

const insert = (m: EntityManager, key: string) => m.insert(Item, { key, job: 0, step: 1 });

describe('group commit', () => {
  const t = useTestingApp({ providers: [EventRecorder], coordinator: { maxBatchSize: 64 } });

  /** Holds the drain with a first job until `release()`, so that what is submitted meanwhile queues up. */
  function holdDrain(key = 'leader') {
    const release = deferred();
    const leader = t.coordinator.run(async (m) => {
      await insert(m, key);
      await release.promise;
      return key;
    });
    return { leader, release: () => release.resolve() };
  }

  it('commits one batch in which every third job throws: exactly the others, each failure to its caller', async () => {
    const { leader, release } = holdDrain();
    const jobs = Array.from({ length: 30 }, (_, i) =>
      t.coordinator.run(async (m) => {
        await insert(m, `k${i}`);
        if (i % 3 === 2) throw new Error(`job ${i} fails`);
        return i;
      }),
    );
    release();
    const settled = await Promise.allSettled([leader, ...jobs]);
    settled.slice(1).forEach((s, i) => {
      if (i % 3 === 2) expect(s).toMatchObject({ status: 'rejected', reason: { message: `job ${i} fails` } });
      else expect(s).toEqual({ status: 'fulfilled', value: i });
    });
    const kept = Array.from({ length: 30 }, (_, i) => i)
      .filter((i) => i % 3 !== 2)
      .map((i) => `k${i}`);
    expect(committedKeys(t.database)).toEqual(['leader', ...kept]);
    expect(t.coordinator.metrics()).toMatchObject({
      accepted: 31,
      completed: 21,
      failed: 10,
      running: 0,
      batches: { committed: 1, jobs: 21, largest: 21 }, // 31 jobs ran in one transaction; 21 committed
    });
  });

  it('fails every job of the batch when its COMMIT fails, and commits none of it', async () => {
    const ds = t.coordinator.dataSource!;
    await ds.query('CREATE TABLE parents (id INTEGER PRIMARY KEY)');
    await ds.query(
      'CREATE TABLE kids (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)',
    );
    const { leader, release } = holdDrain();
    const jobs = Array.from({ length: 5 }, (_, i) =>
      t.coordinator.run(async (m) => {
        await insert(m, `k${i}`);
        // A deferred foreign key is checked at COMMIT: the batch's COMMIT fails, for every member.
        if (i === 3) await m.query('INSERT INTO kids (parent) VALUES (999)');
      }),
    );
    release();
    const settled = await Promise.allSettled([leader, ...jobs]);
    for (const s of settled) {
      expect(s).toMatchObject({
        status: 'rejected',
        reason: {
          code: 'INTERNAL',
          message: expect.stringContaining('could not commit its batch; none of its 6 job(s)'),
        },
      });
    }
    expect(committedKeys(t.database)).toEqual([]);
    expect(t.coordinator.metrics()).toMatchObject({ failed: 6, running: 0, storage: { failing: false } });
    // The coordinator carries on.
    await t.coordinator.run((m) => insert(m, 'after'));
    expect(committedKeys(t.database)).toEqual(['after']);
  });

  it('reports per-job events and change events in commit order', async () => {
    const { leader, release } = holdDrain('k0');
    const jobs = Array.from({ length: 9 }, (_, i) =>
      t.coordinator.run(async (m) => {
        await insert(m, `k${i + 1}`);
        if (i === 4) throw new Error('fails');
      }),
    );
    release();
    await Promise.allSettled([leader, ...jobs]);
    const recorder = t.app.get(EventRecorder);
    const ids = (name: string) => recorder.events.filter((e) => e.name === name).map((e) => e.payload.jobId);
    const completed = ids(WriteCoordinatorEvents.JobCompleted);
    const started = ids(WriteCoordinatorEvents.JobStarted);
    expect(ids(WriteCoordinatorEvents.JobFailed)).toEqual([started[5]]);
    expect(completed).toEqual(started.filter((_, i) => i !== 5)); // commit order = submission order
    const changes = recorder.events.filter((e) => e.name === WriteCoordinatorEvents.Change).map((e) => e.payload);
    expect(changes.map((c) => c.jobId)).toEqual(completed);
    // The failed job's rowid was rolled back with its savepoint, so the next insert reuses it.
    expect(changes.map((c) => (c.ids as { id: number }).id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // Changes are published before the jobs are reported completed, all after the COMMIT.
    const names = recorder.log();
    expect(names.lastIndexOf(names.find((n) => n.startsWith('change'))!)).toBeLessThan(
      names.findIndex((n) => n.startsWith('job.completed')),
    );
  });

  it('never lets a job aborted or expired while waiting join a batch', async () => {
    const { leader, release } = holdDrain();
    const ran: string[] = [];
    const abort = new AbortController();
    const job = (key: string, options = {}) =>
      t.coordinator.run(async (m) => {
        ran.push(key);
        await insert(m, key);
      }, options);
    const kept1 = job('kept1');
    const aborted = expect(job('aborted', { signal: abort.signal })).rejects.toMatchObject({
      code: 'CANCELLED',
      message: expect.stringContaining('while it was queued; it never ran'),
    });
    const expired = expect(job('expired', { timeoutMs: 10 })).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringContaining('while it was queued; it never ran'),
    });
    const kept2 = job('kept2');
    abort.abort();
    await new Promise((resolve) => setTimeout(resolve, 30));
    release();
    await aborted;
    await expired;
    await Promise.all([leader, kept1, kept2]);
    expect(ran).toEqual(['kept1', 'kept2']);
    expect(committedKeys(t.database)).toEqual(['leader', 'kept1', 'kept2']);
    expect(t.coordinator.metrics().batches).toMatchObject({ committed: 1, largest: 3 });
  });

  it('rolls back only the savepoint of a member whose deadline passes while it runs', async () => {
    const { leader, release } = holdDrain();
    const slow = t.coordinator.run(
      async (m) => {
        await insert(m, 'slow');
        await new Promise((resolve) => setTimeout(resolve, 50));
      },
      { timeoutMs: 200 },
    );
    const after = t.coordinator.run((m) => insert(m, 'after'));
    await new Promise((resolve) => setTimeout(resolve, 180));
    release(); // slow starts with about 20 ms of its deadline left, and needs 50
    await expect(slow).rejects.toMatchObject({ code: 'TIMEOUT' });
    await Promise.all([leader, after]);
    expect(committedKeys(t.database)).toEqual(['leader', 'after']);
  });

  it('keeps re-entrancy inside a member: a nested call that throws rolls back only its own savepoint', async () => {
    const { leader, release } = holdDrain();
    const member = t.coordinator.run(async (m) => {
      await insert(m, 'member');
      await t.coordinator
        .run(async (inner) => {
          await insert(inner, 'nested-fails');
          throw new Error('nested fails');
        })
        .catch(() => undefined);
      await t.coordinator.dataSource!.transaction((inner) => insert(inner, 'nested-kept'));
    });
    const next = t.coordinator.run((m) => insert(m, 'next'));
    release();
    await Promise.all([leader, member, next]);
    expect(committedKeys(t.database)).toEqual(['leader', 'member', 'nested-kept', 'next']);
    expect(t.coordinator.metrics().batches).toMatchObject({ committed: 1, largest: 3 });
  });

  it('caps a batch at maxBatchSize', async () => {
    await t.app.close();
    const app = await createTestingApp({ database: t.database, coordinator: { maxBatchSize: 4 } });
    try {
      const coordinator = app.get(WriteCoordinator);
      await Promise.all(Array.from({ length: 20 }, (_, i) => coordinator.run((m) => insert(m, `k${i}`))));
      const { batches } = coordinator.metrics();
      expect(batches.largest).toBe(4); // 19 jobs queued behind the first: batches fill up to the cap
      expect(batches.jobs).toBe(20);
      expect(committedKeys(t.database)).toHaveLength(20);
    } finally {
      await app.close();
    }
  });
});

describe('group commit with batchWaitMs', () => {
  const t = useTestingApp({ coordinator: { batchWaitMs: 100 } });

  it('lets a job that arrives within batchWaitMs join the batch before its COMMIT', async () => {
    let firstSettled = false;
    const first = t.coordinator.run((m) => insert(m, 'first')).then(() => (firstSettled = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(firstSettled).toBe(false); // still waiting for more, not committed yet
    const second = t.coordinator.run((m) => insert(m, 'second'));
    await Promise.all([first, second]);
    expect(t.coordinator.metrics().batches).toMatchObject({ committed: 1, jobs: 2, largest: 2 });
    expect(committedKeys(t.database)).toEqual(['first', 'second']);
  });
});
