import { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { Coordinator } from '@app/write-coordinator';
import { WriteCoordinatorPrometheus } from '@app/write-coordinator/observability/prometheus';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { parsePrometheusText, valueOf } from './fixtures/prometheus-text';
import { openDataSource, tempDir } from './fixtures/temp-sqlite';

/** The exporter follows a coordinator until nothing of it can change any more. */
describe('WriteCoordinatorPrometheus around shutdown()', () => {
  let tmp: ReturnType<typeof tempDir>;
  let dataSource: DataSource;
  beforeEach(async () => {
    tmp = tempDir();
    dataSource = await openDataSource(tmp.file('test.db'));
  });
  afterEach(async () => {
    await dataSource.destroy();
    tmp.cleanup();
  });

  it('counts the job still running when shutdown() stopped the coordinator, scraped before and after it settled', async () => {
    const registry = new Registry();
    const coordinator = new Coordinator({ instrumentation: [new WriteCoordinatorPrometheus({ registry })] });
    await coordinator.attach(dataSource);
    const release = deferred();
    const running = coordinator.run(async (m) => {
      await m.insert(Item, { key: 'late', job: 0, step: 1 });
      await release.promise;
    });
    await new Promise((resolve) => setImmediate(resolve));
    const stopped = coordinator.shutdown();
    expect(coordinator.state).toBe('stopped');
    const completed = async () =>
      valueOf(parsePrometheusText(await registry.metrics()), 'write_coordinator_jobs_completed_total', {
        coordinator: 'default',
      });

    expect(await completed()).toBe(0); // scraped while it runs, the coordinator already stopped
    release.resolve();
    await running;
    await stopped;
    expect(await completed()).toBe(1); // still followed: its completion is counted
    await coordinator.close();
  });
});
