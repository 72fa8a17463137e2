import { INestApplication, Injectable } from '@nestjs/common';
import { EventEmitter2, OnEvent } from '@nestjs/event-emitter';
import { WriteCoordinator, WriteCoordinatorEvents } from '@app/write-coordinator';
import { deferred } from './fixtures/deferred';
import { EventRecorder } from './fixtures/event.recorder';
import { Item } from './fixtures/item.entity';
import { committedItems, tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';

@Injectable()
class ThrowingListener {
  calls = 0;
  @OnEvent(WriteCoordinatorEvents.JobStarted)
  onStarted(): void {
    this.calls++;
    throw new Error('listener bug');
  }
}

describe('WriteCoordinator events', () => {
  let tmp: ReturnType<typeof tempDir>;
  let app: INestApplication;
  beforeEach(() => (tmp = tempDir()));
  afterEach(async () => {
    await app.close();
    tmp.cleanup();
  });

  it('emits accepted, started, completed/failed, rejected, saturated and drained in order', async () => {
    app = await createTestingApp({
      database: tmp.file('events.db'),
      // One job per transaction: with group commit, b would join a's batch (see group-commit.e2e-spec.ts).
      coordinator: { queueSize: 1, whenFull: 'reject', maxBatchSize: 1 },
      providers: [EventRecorder],
    });
    const coordinator = app.get(WriteCoordinator);
    const recorder = app.get(EventRecorder);
    const gate = deferred();
    const a = coordinator.run(
      async (m) => {
        await m.insert(Item, { key: 'a', job: 1, step: 1 });
        await gate.promise;
      },
      { label: 'a' },
    );
    const b = coordinator.run(() => Promise.reject(new Error('b fails')), { label: 'b' });
    const c = coordinator.run(async () => 'c', { label: 'c' });
    await expect(c).rejects.toMatchObject({ code: 'QUEUE_FULL' });
    gate.resolve();
    await a;
    await expect(b).rejects.toThrow('b fails');
    await coordinator.onIdle();
    expect(recorder.log()).toEqual([
      'job.accepted a',
      'queue.saturated',
      'job.started a',
      'job.accepted b',
      'queue.saturated',
      'job.rejected c',
      expect.stringMatching(/^change /), // a's inserted row, published after its COMMIT
      'job.completed a',
      'job.started b',
      'job.failed b',
      'queue.drained',
    ]);
    const payload = (name: string) => recorder.events.find((e) => e.name === name)!.payload;
    expect(payload(WriteCoordinatorEvents.JobAccepted)).toEqual({
      coordinator: 'default',
      jobId: expect.any(String),
      label: 'a',
      queueDepth: 1,
    });
    expect(payload(WriteCoordinatorEvents.JobCompleted)).toEqual(
      expect.objectContaining({ label: 'a', waitMs: expect.any(Number), runMs: expect.any(Number) }),
    );
    expect(payload(WriteCoordinatorEvents.JobRejected)).toEqual(
      expect.objectContaining({ label: 'c', code: 'QUEUE_FULL' }),
    );
    expect(payload(WriteCoordinatorEvents.JobFailed)).toEqual(
      expect.objectContaining({ label: 'b', error: expect.any(Error) }),
    );
  });

  it('keeps draining when a listener throws (decorated or raw)', async () => {
    app = await createTestingApp({ database: tmp.file('events.db'), providers: [ThrowingListener] });
    const coordinator = app.get(WriteCoordinator);
    let rawCalls = 0;
    app.get(EventEmitter2).on(WriteCoordinatorEvents.JobCompleted, () => {
      rawCalls++;
      throw new Error('raw listener bug');
    });
    await Promise.all(
      Array.from({ length: 5 }, (_, i) => coordinator.run((m) => m.insert(Item, { key: `k${i}`, job: i, step: 1 }))),
    );
    expect(app.get(ThrowingListener).calls).toBe(5);
    expect(rawCalls).toBe(5);
    expect(await committedItems(tmp.file('events.db'))).toHaveLength(5);
  });

  it('works without an EventEmitter2 in the app', async () => {
    app = await createTestingApp({ database: tmp.file('events.db'), events: false });
    await app.get(WriteCoordinator).run((m) => m.insert(Item, { key: 'k', job: 1, step: 1 }));
    expect(await committedItems(tmp.file('events.db'))).toHaveLength(1);
  });
});
