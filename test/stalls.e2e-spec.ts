import { setTimeout as sleep } from 'node:timers/promises';
import { WriteCoordinator, WriteCoordinatorHealthIndicator } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { Item } from './fixtures/item.entity';
import { tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';

const GRACE_MS = 300;

describe('a job that never settles', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('turns health down after maxStallMs, lets other deadlines fire, and shutdown still ends in time', async () => {
    const database = tmp.file('stall.db');
    const app = await createTestingApp({ database, coordinator: { shutdownGraceMs: GRACE_MS } });
    const coordinator = app.get(WriteCoordinator);
    const indicator = app.get(WriteCoordinatorHealthIndicator);

    let stalledSignal: AbortSignal | undefined;
    const stalled = coordinator.run(async (m, job) => {
      stalledSignal = job.signal;
      await m.insert(Item, { key: 'stalled', job: 1, step: 1 });
      await new Promise(() => undefined); // never settles
    });
    const stalledOutcome = stalled.then(
      () => 'resolved',
      (error: { code?: string }) => error.code,
    );
    await sleep(150);

    // Health: down once the running job is stuck longer than maxStallMs; the metrics show it.
    const health = await indicator.isHealthy('writes', { maxStallMs: 100 });
    expect(health.writes).toMatchObject({ status: 'down', reason: expect.stringContaining('running job stalled') });
    expect(coordinator.metrics()).toMatchObject({ running: 1 });
    expect(coordinator.metrics().runningForMs).toBeGreaterThanOrEqual(100);

    // Other callers' deadlines still fire while the drain is stuck; their work never runs.
    let ran = false;
    const waiting = coordinator.run(
      () => {
        ran = true;
      },
      { timeoutMs: 50 },
    );
    await expect(waiting).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true });
    expect(ran).toBe(false);

    // Shutdown: the grace period, then at most one more second for the running job, then its
    // caller gets SHUTDOWN (never left pending) and its transaction is never committed.
    const queued = coordinator
      .run((m) => m.insert(Item, { key: 'queued', job: 2, step: 1 }))
      .then(
        () => 'resolved',
        (error: { code?: string }) => error.code,
      );
    const started = performance.now();
    await app.close();
    const closeMs = performance.now() - started;
    expect(closeMs).toBeLessThan(GRACE_MS + 1_000 + 500);
    await expect(queued).resolves.toBe('SHUTDOWN');
    await expect(stalledOutcome).resolves.toBe('SHUTDOWN');
    expect(stalledSignal?.aborted).toBe(true);
    expect(committedKeys(database)).toEqual([]);
  });
});
