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
