import { WriteCoordinator } from '@app/write-coordinator';
import { deferred, flush } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { committedItems, tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';

describe('WriteCoordinator in the Nest lifecycle', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('drains every queued job on app.close(), before the DataSource is destroyed', async () => {
    const app = await createTestingApp({ database: tmp.file('life.db') });
    const coordinator = app.get(WriteCoordinator);
    const gate = deferred();
    const first = coordinator.run(async (m) => {
      await m.insert(Item, { key: 'first', job: 0, step: 1 });
      await gate.promise;
    });
    const queued = Array.from({ length: 50 }, (_, i) =>
      coordinator.run((m) => m.insert(Item, { key: `q${i}`, job: i, step: 1 })),
    );
    const closing = app.close();
    while (coordinator.state === 'running') await flush();
    await expect(coordinator.run(async () => 'late')).rejects.toMatchObject({ code: 'DRAINING' });
    gate.resolve();
    await closing;
    await Promise.all([first, ...queued]);
    expect(await committedItems(tmp.file('life.db'))).toHaveLength(51);
    expect(coordinator.state).toBe('stopped');
  });

  it('rejects what is still queued with SHUTDOWN when the grace period runs out, leaving no caller pending', async () => {
    const app = await createTestingApp({ database: tmp.file('life.db'), coordinator: { shutdownGraceMs: 50 } });
    const coordinator = app.get(WriteCoordinator);
    const gate = deferred();
    const slow = coordinator.run(async (m) => {
      await m.insert(Item, { key: 'slow', job: 0, step: 1 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await gate.promise;
    });
    const neverRun = jest.fn();
    const queued = Array.from({ length: 10 }, () => coordinator.run(neverRun));
    setTimeout(() => gate.resolve(), 120);
    await app.close();
    const settled = await Promise.allSettled(queued);
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as { code?: string }).code === 'SHUTDOWN')).toBe(
      true,
    );
    expect(neverRun).not.toHaveBeenCalled();
    await expect(slow).resolves.toBeUndefined();
    expect((await committedItems(tmp.file('life.db'))).map((i) => i.key)).toEqual(['slow']);
    expect(coordinator.metrics()).toMatchObject({ dropped: 10, completed: 1 });
  });
});
