import { Controller, Get, Query } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import request from 'supertest';
import { WriteCoordinatorHealthIndicator } from '@app/write-coordinator';
import { deferred } from './fixtures/deferred';
import { useTestingApp } from './fixtures/testing-app';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly writes: WriteCoordinatorHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(@Query('stallMs') stallMs?: string) {
    return this.health.check([
      () => this.writes.isHealthy('writes', { maxQueueRatio: 0.5, maxStallMs: stallMs ? Number(stallMs) : undefined }),
    ]);
  }
}

describe('WriteCoordinatorHealthIndicator over HTTP', () => {
  const t = useTestingApp({
    coordinator: { queueSize: 4 },
    imports: [TerminusModule.forRoot({ logger: false })],
    controllers: [HealthController],
  });

  it('is up with the metrics in the details while the coordinator runs', async () => {
    const res = await request(t.app.getHttpServer()).get('/health').expect(200);
    expect(res.body.status).toBe('ok');
    expect(res.body.details.writes).toMatchObject({ status: 'up', state: 'running', queueDepth: 0, maxQueue: 4 });
  });

  it('goes down (503) when the queue reaches maxQueueRatio of capacity, and up again when it drains', async () => {
    const gate = deferred();
    const jobs = Array.from({ length: 3 }, () => t.coordinator.run(() => gate.promise));
    const down = await request(t.app.getHttpServer()).get('/health').expect(503);
    expect(down.body.details.writes).toMatchObject({
      status: 'down',
      queueDepth: 2,
      reason: expect.stringContaining('queue at 2/4'),
    });
    gate.resolve();
    await Promise.all(jobs);
    await request(t.app.getHttpServer()).get('/health').expect(200);
  });

  it('goes down when the running job stalls longer than maxStallMs', async () => {
    const gate = deferred();
    const job = t.coordinator.run(() => gate.promise);
    await new Promise((resolve) => setTimeout(resolve, 30));
    const res = await request(t.app.getHttpServer()).get('/health?stallMs=10').expect(503);
    expect(res.body.details.writes.reason).toContain('running job stalled');
    gate.resolve();
    await job;
  });

  it('goes down (503) once the coordinator is stopped', async () => {
    await t.coordinator.shutdown();
    const res = await request(t.app.getHttpServer()).get('/health').expect(503);
    expect(res.body.details.writes).toMatchObject({
      status: 'down',
      state: 'stopped',
      reason: 'coordinator is stopped',
    });
  });

  it('reports down for a coordinator name that does not exist', async () => {
    const result = await t.app.get(WriteCoordinatorHealthIndicator).isHealthy('x', { coordinator: 'nope' });
    expect(result).toEqual({
      x: { status: 'down', coordinator: 'nope', reason: "no coordinator named 'nope' is registered" },
    });
  });
});

/** Blocks the event loop for real: `blocks` busy loops of `ms` each, with one turn of the loop between them. */
async function overloadEventLoop(blocks: number, ms: number): Promise<void> {
  for (let i = 0; i < blocks; i++) {
    const until = performance.now() + ms;
    while (performance.now() < until) {
      // busy: nothing else runs, as when a process has more requests than CPU
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('WriteCoordinatorHealthIndicator under event-loop overload', () => {
  const t = useTestingApp({
    imports: [TerminusModule.forRoot({ logger: false })],
    controllers: [HealthController],
  });
  const check = () => t.app.get(WriteCoordinatorHealthIndicator).isHealthy('writes');
  const idle = () => new Promise((resolve) => setTimeout(resolve, 2_100)); // past the 1–2 s look-back

  it('is up when idle, degraded (HTTP 200) when the loop lags > 100 ms, down (503) when it lags > 1 s, up again when idle', async () => {
    await idle();
    const calm = await check();
    expect(calm.writes).toMatchObject({ status: 'up' });
    expect(calm.writes.eventLoop.p99).toBeLessThan(100);

    await overloadEventLoop(8, 150);
    const slow = await check();
    expect(slow.writes).toMatchObject({
      status: 'degraded',
      reason: expect.stringContaining('event loop overloaded'),
    });
    expect(slow.writes.eventLoop.p99).toBeGreaterThan(100);
    const overHttp = await request(t.app.getHttpServer()).get('/health').expect(200);
    expect(overHttp.body).toMatchObject({ status: 'degraded', details: { writes: { status: 'degraded' } } });

    await overloadEventLoop(2, 1_200);
    const blocked = await check();
    expect(blocked.writes).toMatchObject({ status: 'down', reason: expect.stringContaining('maxEventLoopDelayMs') });

    await idle();
    expect((await check()).writes).toMatchObject({ status: 'up' });
    console.info(
      `event-loop health: idle p99 ${calm.writes.eventLoop.p99} ms (up); 150 ms blocks p99 ${slow.writes.eventLoop.p99} ms ` +
        `(degraded); 1.2 s blocks p99 ${blocked.writes.eventLoop.p99} ms (down)`,
    );
  }, 20_000);

  it('refuses thresholds out of range with INVALID_OPTIONS, like the module options', async () => {
    await expect(
      t.app.get(WriteCoordinatorHealthIndicator).isHealthy('x', { degradedEventLoopDelayMs: 0 }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringContaining(
        'degradedEventLoopDelayMs must be a finite number of ms greater than 0 (received 0, number)',
      ),
    });
    await expect(
      t.app.get(WriteCoordinatorHealthIndicator).isHealthy('x', { maxEventLoopDelayMs: Number.NaN }),
    ).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'maxEventLoopDelayMs' });
    await expect(
      t.app.get(WriteCoordinatorHealthIndicator).isHealthy('x', { maxQueueRatio: 1.5 }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringContaining('maxQueueRatio must be a number in (0, 1]'),
    });
  });
});
