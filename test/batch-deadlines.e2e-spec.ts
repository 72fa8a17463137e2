import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Test } from '@nestjs/testing';
import { WriteCoordinator, WriteCoordinatorModule } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { deferred, flush } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { openDataSource, tempDir } from './fixtures/temp-sqlite';
import { createTestingApp, useTestingApp } from './fixtures/testing-app';

/** The outcome of a promise as a plain value (observed at once: a rejection is never unhandled). */
function outcome(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => ({ ok: value }),
    (error: { code?: string; message?: string }) => ({ code: error.code, message: error.message }),
  );
}

/** The outcome of a promise, or 'pending' if it has not settled within `ms`. */
async function outcomeWithin(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([outcome(promise), sleep(ms).then(() => 'pending')]);
}

const insert = (c: WriteCoordinator, key: string, options = {}) =>
  c.run((m) => m.insert(Item, { key, job: 0, step: 0 }).then(() => key), options);

describe('deadlines inside a batch (issue 9, item 6)', () => {
  const t = useTestingApp({ coordinator: { maxBatchSize: 64 } });

  /** A first job that holds the drain until released, so that what follows queues behind it. */
  function holdDrain() {
    const release = deferred();
    const leader = t.coordinator.run(async (m) => {
      await m.insert(Item, { key: 'leader', job: 0, step: 0 });
      await release.promise;
      return 'leader';
    });
    return { leader, release: () => release.resolve() };
  }

  it('answers a member whose work returned by its deadline although a later member is slow; the slow one fails alone', async () => {
    const c = t.coordinator;
    const { leader, release } = holdDrain();
    const quick = insert(c, 'quick', { timeoutMs: 300 });
    const slowGate = deferred();
    let slowRefusal: unknown;
    let slowSignal: AbortSignal | undefined;
    const slow = c.run(async (m, job) => {
      slowSignal = job.signal;
      await m.insert(Item, { key: 'slow-1', job: 0, step: 0 });
      await slowGate.promise;
      // The batch gave up on this job: whatever it writes now is refused, never committed.
      slowRefusal = await m.insert(Item, { key: 'slow-2', job: 0, step: 0 }).catch((e: unknown) => e);
    });
    const after = insert(c, 'after');
    await flush();
    release();

    // Answered (committed) near its deadline, while the slow member's work is still running.
    expect(await outcomeWithin(quick, 5_000)).toEqual({ ok: 'quick' });
    expect(await outcomeWithin(leader, 100)).toEqual({ ok: 'leader' });
    expect(await outcomeWithin(slow, 100)).toMatchObject({ code: 'TIMEOUT' });
    expect(slowSignal?.aborted).toBe(true); // its work is told to stop
    expect(c.metrics()).toMatchObject({ timedOut: 1 });
    expect(await outcomeWithin(after, 5_000)).toEqual({ ok: 'after' });

    slowGate.resolve();
    await sleep(50);
    expect(slowRefusal).toMatchObject({ code: 'TIMEOUT' });
    expect(committedKeys(t.database)).toEqual(['leader', 'quick', 'after']);
    const m = c.metrics();
    expect(m).toMatchObject({ running: 0, queueDepth: 0 });
    expect(m.accepted).toBe(m.completed + m.failed + m.cancelled + m.timedOut + m.dropped + m.queueDepth + m.running);
    await expect(insert(c, 'later')).resolves.toBe('later');
  });

  it('answers a member whose own deadline passes while it runs at that deadline, and commits the others', async () => {
    const c = t.coordinator;
    const { leader, release } = holdDrain();
    const stuck = c.run(
      async (m) => {
        await m.insert(Item, { key: 'stuck', job: 0, step: 0 });
        await new Promise(() => undefined); // never settles
      },
      { timeoutMs: 200 },
    );
    const after = insert(c, 'after');
    await flush();
    release();
    expect(await outcomeWithin(stuck, 5_000)).toMatchObject({ code: 'TIMEOUT' });
    expect(await outcomeWithin(leader, 1_000)).toEqual({ ok: 'leader' });
    expect(await outcomeWithin(after, 1_000)).toEqual({ ok: 'after' });
    expect(committedKeys(t.database)).toEqual(['leader', 'after']);
  });

  it('gives a leader whose own work threw its own error, even when its deadline passes while the queued jobs run', async () => {
    const c = t.coordinator;
    const release = deferred();
    const leader = c.run(
      async (m) => {
        await m.insert(Item, { key: 'leader', job: 0, step: 0 });
        await release.promise;
        throw new Error('the leader’s own failure');
      },
      { timeoutMs: 300 },
    );
    const slow = c.run(async (m) => {
      await m.insert(Item, { key: 'slow', job: 0, step: 0 });
      await sleep(600);
    });
    await flush();
    release.resolve();
    await expect(leader).rejects.toThrow('the leader’s own failure');
    await expect(slow).resolves.toBeUndefined();
    expect(committedKeys(t.database)).toEqual(['slow']);
  });
});

describe('shutdown with a batch member that never settles (issue 9, item 5)', () => {
  it('answers every caller of the batch: the committed members succeed, the stalled one gets SHUTDOWN', async () => {
    const tmp = tempDir();
    const database = tmp.file('stall.db');
    const app = await createTestingApp({ database, coordinator: { maxBatchSize: 64, shutdownGraceMs: 100 } });
    const c = app.get(WriteCoordinator);
    const release = deferred();
    const leader = c.run(async (m) => {
      await m.insert(Item, { key: 'leader', job: 0, step: 0 });
      await release.promise;
    });
    const first = insert(c, 'first');
    const stalled = c.run(async (m) => {
      await m.insert(Item, { key: 'stalled', job: 0, step: 0 });
      await new Promise(() => undefined); // never settles
    });
    await flush();
    release.resolve();
    await sleep(50);
    const queued = outcome(insert(c, 'queued'));
    const stalledOutcome = outcome(stalled);
    await app.close();
    expect(await outcomeWithin(leader, 100)).toEqual({ ok: undefined });
    expect(await outcomeWithin(first, 100)).toEqual({ ok: 'first' });
    expect(await outcomeWithin(stalledOutcome, 100)).toMatchObject({ ok: { code: 'SHUTDOWN' } });
    expect(await outcomeWithin(queued, 100)).toMatchObject({ ok: { code: 'SHUTDOWN' } });
    expect(committedKeys(database)).toEqual(['leader', 'first']);
    tmp.cleanup();
  });
});

/**
 * Writes from a shutdown hook of another module (issue 9, item 2). Nest runs `onApplicationShutdown`
 * of deeper modules first: at distance 2 this runs after the coordinator's hook and before
 * `@nestjs/typeorm` destroys the DataSource, the window in which writes used to run unserialised.
 */
@Injectable()
class LateWriter implements OnApplicationShutdown {
  static outcomes: Array<{ write: string; outcome: string }> = [];
  static precondition: { stopped: boolean; initialized: boolean } | undefined;

  constructor(private readonly moduleRef: ModuleRef) {}

  async onApplicationShutdown(): Promise<void> {
    const coordinator = this.moduleRef.get(WriteCoordinator, { strict: false });
    const ds = coordinator.dataSource!;
    LateWriter.precondition = { stopped: coordinator.state === 'stopped', initialized: ds.isInitialized };
    if (!ds.isInitialized) return;
    const record = (write: string, p: Promise<unknown>) =>
      p.then(
        () => LateWriter.outcomes.push({ write, outcome: 'resolved' }),
        (e: { code?: string }) => LateWriter.outcomes.push({ write, outcome: e.code ?? 'error' }),
      );
    const failingTransaction = record(
      'transaction',
      ds.transaction(async (m) => {
        await m.insert(Item, { key: 'in-failing-transaction', job: 0, step: 0 });
        await flush();
        throw new Error('telemetry flush failed');
      }),
    );
    await flush();
    await Promise.all([
      failingTransaction,
      record('insert', ds.getRepository(Item).insert({ key: 'late-insert', job: 0, step: 0 })),
    ]);
  }
}

@Module({ providers: [LateWriter] })
class LateWriterModule {}

@Module({ imports: [LateWriterModule] })
class TelemetryModule {}

describe('writes during the rest of the application shutdown (issue 9, item 2)', () => {
  it('are refused with SHUTDOWN until the DataSource is destroyed, never run unserialised', async () => {
    const tmp = tempDir();
    const database = tmp.file('late.db');
    const app = await createTestingApp({ database, imports: [TelemetryModule as never] });
    await app.close();
    expect(LateWriter.precondition).toEqual({ stopped: true, initialized: true });
    expect(LateWriter.outcomes.sort((a, b) => a.write.localeCompare(b.write))).toEqual([
      { write: 'insert', outcome: 'SHUTDOWN' },
      { write: 'transaction', outcome: 'SHUTDOWN' },
    ]);
    expect(committedKeys(database)).toEqual([]);
    tmp.cleanup();
  });
});

describe('a re-entrant call that ends its own savepoint inside a batch member', () => {
  const t = useTestingApp({ coordinator: { maxBatchSize: 64 } });

  it('is refused, and an error that says nothing was written is true', async () => {
    const c = t.coordinator;
    const release = deferred();
    const leader = c.run(async (m) => {
      await m.insert(Item, { key: 'leader', job: 0, step: 0 });
      await release.promise;
    });
    const member = c.run(async (m) => {
      await m.insert(Item, { key: 'member', job: 0, step: 0 });
      await c.run((m2) => m2.queryRunner!.commitTransaction());
    });
    await flush();
    release.resolve();
    const [l, r] = await Promise.allSettled([leader, member]);
    expect(l.status).toBe('fulfilled');
    expect(r.status).toBe('rejected');
    expect(committedKeys(t.database)).toEqual(['leader']);
  });
});

describe('a DataSource the app passed as an instance', () => {
  it('is given back at app.close(): usable by plain TypeORM and by the coordinator of another app', async () => {
    const tmp = tempDir();
    const ds = await openDataSource(tmp.file('owned.db'));
    const boot = async () => {
      const moduleRef = await Test.createTestingModule({
        imports: [WriteCoordinatorModule.forRoot({ dataSource: ds })],
      }).compile();
      const app = moduleRef.createNestApplication({ logger: false });
      await app.init();
      return app;
    };
    try {
      const first = await boot();
      await first.get(WriteCoordinator).run((m) => m.insert(Item, { key: 'a', job: 0, step: 0 }));
      await first.close();
      await ds.getRepository(Item).insert({ key: 'b', job: 0, step: 0 });
      const second = await boot();
      await second.get(WriteCoordinator).run((m) => m.insert(Item, { key: 'c', job: 0, step: 0 }));
      await second.close();
      expect(committedKeys(tmp.file('owned.db'))).toEqual(['a', 'b', 'c']);
    } finally {
      await ds.destroy();
      tmp.cleanup();
    }
  });
});
