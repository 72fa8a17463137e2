import { Injectable, Logger } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { EntityChange, WriteChange, WriteCoordinatorEvents, WriteHandler } from '@app/write-coordinator';
import { EventRecorder } from './fixtures/event.recorder';
import { Item } from './fixtures/item.entity';
import { useTestingApp } from './fixtures/testing-app';

@Injectable()
class SeedStyleHandlers {
  @WriteHandler('CreateItem')
  async create(params: { key: string }, manager: EntityManager): Promise<{ key: string }> {
    await manager.insert(Item, { key: params.key, job: 0, step: 0 });
    return { key: params.key };
  }
}

/** Publishes into an array, so tests see exactly what a custom publisher receives. */
class ArrayPublisher {
  readonly changes: WriteChange[] = [];
  publish(change: WriteChange): void {
    this.changes.push(change);
  }
}

const item = (key: string, job = 0) => ({ key, job, step: 1 });

describe('entity change events (EventEmitter2 publisher by default)', () => {
  const t = useTestingApp({ providers: [EventRecorder, SeedStyleHandlers] });
  const changes = () =>
    t.app
      .get(EventRecorder)
      .events.filter((e) => e.name === WriteCoordinatorEvents.Change)
      .map((e) => e.payload as unknown as WriteChange);

  it('reports inserted, updated and removed rows with entity, table, primary keys and topic, after commit', async () => {
    const { id } = await t.coordinator.run(async (m) => m.getRepository(Item).save(item('a')));
    const jobs: string[] = [];
    await t.coordinator.run(async (m, job) => {
      jobs.push(job.jobId);
      const row = await m.findOneByOrFail(Item, { id });
      row.step = 2;
      await m.save(row);
    });
    await t.coordinator.run(async (m, job) => {
      jobs.push(job.jobId);
      await m.remove(await m.findOneByOrFail(Item, { id }));
    });
    expect(changes()).toEqual([
      expect.objectContaining({ kind: 'entity', entity: 'Item', table: 'items', operation: 'inserted', ids: { id } }),
      {
        kind: 'entity',
        coordinator: 'default',
        jobId: jobs[0],
        topic: 'db.item.updated',
        entity: 'Item',
        table: 'items',
        operation: 'updated',
        ids: { id },
      },
      expect.objectContaining({ jobId: jobs[1], topic: 'db.item.removed', operation: 'removed', ids: { id } }),
    ]);
  });

  it('publishes nothing for a rolled-back job, nor for a savepoint rolled back inside a committed one', async () => {
    await t.coordinator
      .run(async (m) => {
        await m.insert(Item, item('rolled-back'));
        throw new Error('job fails');
      })
      .catch(() => undefined);
    await t.coordinator.run(async (m) => {
      await m.insert(Item, item('kept'));
      await t.coordinator
        .run(async (inner) => {
          await inner.insert(Item, item('savepoint'));
          throw new Error('savepoint fails');
        })
        .catch(() => undefined);
    });
    expect(changes().map((c) => (c as EntityChange).ids)).toEqual([{ id: expect.any(Number) }]);
    expect(changes()).toEqual([expect.objectContaining({ operation: 'inserted' })]);
  });

  it('reports writes serialised transparently (outside any job) too', async () => {
    await t.coordinator.dataSource!.getRepository(Item).save(item('outside'));
    expect(changes()).toEqual([expect.objectContaining({ operation: 'inserted', ids: { id: 1 } })]);
  });

  it('names submit() topics after the seed: CreateItem → db.item.created, after its entity changes', async () => {
    await t.coordinator.submit({ method: 'CreateItem', params: { key: 'x' } });
    expect(changes().map((c) => `${c.kind} ${c.topic}`)).toEqual([
      'entity db.item.inserted',
      'request db.item.created',
    ]);
  });

  it('publishes in commit order over 1,000 mixed jobs, never for failed ones', async () => {
    const recorder = t.app.get(EventRecorder);
    const ds = t.coordinator.dataSource!;
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 1_000; i++) {
      const key = `k${i}`;
      switch (i % 5) {
        case 0:
          calls.push(t.coordinator.run((m) => m.insert(Item, item(key, i))));
          break;
        case 1:
          calls.push(t.coordinator.submit({ method: 'CreateItem', params: { key } }));
          break;
        case 2:
          calls.push(ds.getRepository(Item).save(item(key, i))); // transparent: its own job
          break;
        case 3:
          calls.push(
            t.coordinator.run(async (m) => {
              await m.insert(Item, item(key, i));
              throw new Error('fails after writing');
            }),
          );
          break;
        default:
          calls.push(
            ds.transaction(async (m) => {
              await m.insert(Item, item(`${key}-a`, i));
              await m.insert(Item, item(`${key}-b`, i));
            }),
          );
      }
    }
    const settled = await Promise.allSettled(calls);
    expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(200);

    const completed = recorder.events
      .filter((e) => e.name === WriteCoordinatorEvents.JobCompleted)
      .map((e) => e.payload.jobId);
    const failed = new Set(
      recorder.events.filter((e) => e.name === WriteCoordinatorEvents.JobFailed).map((e) => e.payload.jobId),
    );
    const published = changes();
    const inserted = published.filter((c): c is EntityChange => c.kind === 'entity');
    // 200 + 200 + 200 single inserts and 200 two-row transactions committed; the 200 failures published nothing.
    expect(inserted).toHaveLength(1_000);
    expect(published.filter((c) => failed.has(c.jobId))).toEqual([]);
    // Jobs publish one after the other, in the order they committed.
    const jobOrder = published.map((c) => c.jobId).filter((jobId, i, all) => i === 0 || all[i - 1] !== jobId);
    expect(jobOrder).toEqual(completed);
    // Independent check: rowids grow with commit order, and the changes carry them in that order.
    const ids = inserted.map((c) => c.ids!.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  });
});

describe('a custom ChangePublisher and topic mapping', () => {
  const publisher = new ArrayPublisher();
  const t = useTestingApp({
    providers: [SeedStyleHandlers],
    coordinator: { publisher, topics: { CreateItem: 'items.new' } },
  });
  beforeEach(() => (publisher.changes.length = 0));

  it('receives every change, with the mapped topic', async () => {
    await t.coordinator.submit({ method: 'CreateItem', params: { key: 'x' } });
    expect(publisher.changes.map((c) => c.topic)).toEqual(['db.item.inserted', 'items.new']);
  });
});

describe('a ChangePublisher that wants nothing right now', () => {
  const publish = jest.fn();
  const t = useTestingApp({
    providers: [SeedStyleHandlers],
    coordinator: { publisher: { publish, wants: () => false } },
  });

  it('is never called: changes are not even built', async () => {
    await t.coordinator.submit({ method: 'CreateItem', params: { key: 'x' } });
    await t.coordinator.dataSource!.getRepository(Item).save(item('y'));
    expect(publish).not.toHaveBeenCalled();
  });
});

describe('a failing ChangePublisher', () => {
  const publish = jest.fn<void | Promise<void>, [WriteChange]>();
  const t = useTestingApp({ providers: [SeedStyleHandlers], coordinator: { publisher: { publish } } });
  afterEach(() => jest.restoreAllMocks());

  it('is logged and never fails the write, whether it throws or rejects', async () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    publish.mockImplementationOnce(() => {
      throw new Error('publisher throws');
    });
    publish.mockImplementationOnce(() => Promise.reject(new Error('publisher rejects')));
    await expect(t.coordinator.submit({ method: 'CreateItem', params: { key: 'x' } })).resolves.toEqual({ key: 'x' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(await t.coordinator.dataSource!.getRepository(Item).count()).toBe(1);
    expect(logged.mock.calls.map(([message]) => String(message))).toEqual([
      expect.stringContaining('failed'),
      expect.stringContaining('failed'),
    ]);
  });
});
