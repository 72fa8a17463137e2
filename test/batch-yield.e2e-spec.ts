import { Controller, INestApplication, Post } from '@nestjs/common';
import { EntitySubscriberInterface, EventSubscriber, TransactionCommitEvent } from 'typeorm';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { BatchYield, InjectWriteCoordinator, WriteCoordinator } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { Item } from './fixtures/item.entity';
import { createTestingApp } from './fixtures/testing-app';
import { tempDir } from './fixtures/temp-sqlite';

/**
 * Group commit when jobs arrive the way HTTP requests do: each from its own macrotask (a socket's
 * I/O callback), never two from one synchronous stretch. better-sqlite3 is synchronous, so without
 * a yield before the COMMIT a job runs from BEGIN to COMMIT before the next request is even parsed.
 */

/** Makes every COMMIT cost about 2 ms of event-loop time, as an fsync does at `synchronous=FULL`. */
@EventSubscriber()
class CostlyCommit implements EntitySubscriberInterface {
  beforeTransactionCommit(_event: TransactionCommitEvent): void {
    const until = performance.now() + 2;
    while (performance.now() < until); // blocks, like better-sqlite3's fsync
  }
}

let counter = 0;

@Controller()
class ItemsController {
  constructor(@InjectWriteCoordinator() private readonly coordinator: WriteCoordinator) {}

  @Post('items')
  create() {
    const key = `r${++counter}`;
    return this.coordinator.run(async (m) => {
      await m.insert(Item, { key, job: 0, step: 1 });
      return { key };
    });
  }
}

describe('group commit with jobs arriving from separate macrotasks (batchYield)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let app: INestApplication | undefined;

  async function boot(batchYield: BatchYield, costlyCommit: boolean): Promise<WriteCoordinator> {
    tmp = tempDir();
    counter = 0;
    app = await createTestingApp({
      database: tmp.file('test.db'),
      coordinator: { batchYield, synchronous: 'OFF', queueSize: 1024 },
      controllers: [ItemsController],
      typeorm: costlyCommit ? { subscribers: [CostlyCommit] } : {},
    });
    return app.get(WriteCoordinator);
  }

  afterEach(async () => {
    await app?.close();
    app = undefined;
    tmp.cleanup();
  });

  /** Submits `n` one-row jobs, each from its own `setImmediate` callback; resolves with the acknowledged keys. */
  async function macrotaskArrivals(coordinator: WriteCoordinator, n: number): Promise<string[]> {
    const jobs = await new Promise<Array<Promise<string>>>((resolve) => {
      const started: Array<Promise<string>> = [];
      for (let i = 0; i < n; i++) {
        setImmediate(() => {
          const key = `m${i}`;
          started.push(coordinator.run(async (m) => (await m.insert(Item, { key, job: 0, step: 1 }), key)));
          if (started.length === n) resolve(started);
        });
      }
    });
    return Promise.all(jobs);
  }

  it.each<[BatchYield, boolean]>([
    ['always', false],
    ['auto', true],
  ])('forms batches with batchYield %p (costly COMMIT: %p)', async (batchYield, costly) => {
    const coordinator = await boot(batchYield, costly);
    await coordinator.run((m) => m.insert(Item, { key: 'warm-up', job: 0, step: 1 })); // 'auto' measures a COMMIT first
    const acknowledged = await macrotaskArrivals(coordinator, 64);
    const { batches } = coordinator.metrics();
    expect(batches.jobs).toBe(65);
    // The first arrival leads; the 63 after it queue while it yields and join it. ('auto' may skip
    // the yield of that first batch: it backs off after the warm-up's useless yield.)
    expect(batches.largest).toBeGreaterThanOrEqual(batchYield === 'always' ? 64 : 63);
    expect(committedKeys(tmp.file('test.db')).sort()).toEqual(['warm-up', ...acknowledged].sort());
  });

  it('yields at most twice per batch when jobs trickle in one per turn of the event loop', async () => {
    const coordinator = await boot('always', false);
    // Each arrival schedules the next one for the following turn: every yield brings exactly one job.
    const acknowledged = await new Promise<Array<Promise<string>>>((resolve) => {
      const started: Array<Promise<string>> = [];
      const arrive = (i: number) => {
        started.push(coordinator.run(async (m) => (await m.insert(Item, { key: `t${i}`, job: 0, step: 1 }), `t${i}`)));
        if (i < 11) setImmediate(() => arrive(i + 1));
        else resolve(started);
      };
      setImmediate(() => arrive(0));
    }).then((jobs) => Promise.all(jobs));
    // A leader and the two jobs its two yields brought, four times over.
    expect(coordinator.metrics().batches).toMatchObject({ jobs: 12, committed: 4, largest: 3 });
    expect(committedKeys(tmp.file('test.db')).sort()).toEqual([...acknowledged].sort());
  });

  it('commits each job alone with batchYield "never": the pattern the yield exists for', async () => {
    const coordinator = await boot('never', true);
    await coordinator.run((m) => m.insert(Item, { key: 'warm-up', job: 0, step: 1 }));
    await macrotaskArrivals(coordinator, 64);
    expect(coordinator.metrics().batches).toMatchObject({ jobs: 65, committed: 65, largest: 1 });
  });

  /**
   * Real sockets from another process (as a load generator would send them): `clients` keep-alive
   * connections, each sending its next POST when the previous one is answered.
   * @returns how many requests were answered 201.
   */
  async function httpLoad(clients: number, requestsEach: number): Promise<number> {
    await app!.listen(0, '127.0.0.1');
    const { port } = app!.getHttpServer().address() as AddressInfo;
    const child = spawn(
      process.execPath,
      [
        join(__dirname, 'fixtures/workers/http-posts.cjs'),
        String(port),
        '/items',
        String(clients),
        String(requestsEach),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const [code] = (await once(child, 'exit')) as [number];
    expect(code).toBe(0);
    return Number(out.trim());
  }

  it('forms batches from concurrent HTTP requests when COMMITs are costly (batchYield "auto", the default)', async () => {
    const coordinator = await boot('auto', true);
    const ok = await httpLoad(32, 8);
    expect(ok).toBe(256);
    const { batches } = coordinator.metrics();
    expect(batches.jobs).toBe(256);
    expect(batches.meanSize).toBeGreaterThan(4); // exactly 1 without the yield (next test)
    expect(committedKeys(tmp.file('test.db'))).toHaveLength(256);
  });

  it('commits every HTTP request alone with batchYield "never" (what the issue measured)', async () => {
    const coordinator = await boot('never', true);
    expect(await httpLoad(32, 8)).toBe(256);
    expect(coordinator.metrics().batches).toMatchObject({ jobs: 256, largest: 1 });
  });
});
