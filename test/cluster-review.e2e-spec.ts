import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { Injectable, INestApplication, Module, OnModuleInit, Scope } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { InjectRepository, TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, EntityManager, Repository } from 'typeorm';
import {
  Coordinator,
  SerializedWrite,
  WriteCoordinator,
  WriteCoordinatorOptions,
  WriteHandler,
} from '@app/write-coordinator';
import { PrimaryLock, primaryLockPath } from '../libs/write-coordinator/src/cluster/primary-lock';
import { claimOf, settle, sleep, until } from './fixtures/caller-outcome';
import { Member, createSchema } from './fixtures/cluster-members';
import { compileLibrary } from './fixtures/compiled-library';
import { Item } from './fixtures/item.entity';
import { openDataSource, tempDir } from './fixtures/temp-sqlite';
import { useClusterMembers } from './fixtures/cluster-in-process';
import { createTestingApp } from './fixtures/testing-app';

/**
 * Review of the cluster change (issue 12): each test here reproduces one finding and fails on the
 * code it was written against. What a caller is told must match what the database holds: an error
 * with `retryable: true` promises the write certainly did not take effect.
 */

/** A handler that inserts, then waits inside its job until told, so a test can act while it runs. */
function slowAdd() {
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  const handler = async (params: unknown, manager: EntityManager) => {
    const { key, ms } = params as { key: string; ms: number };
    await manager.insert(Item, { key, job: 0, step: 0 });
    started();
    await sleep(ms);
    return { key };
  };
  return { running, handler };
}

describe('cluster review: plain coordinators in this process', () => {
  const { member: join, keys, file } = useClusterMembers('wc-cluster-review-');
  const member = (options: WriteCoordinatorOptions, handler: Parameters<Coordinator['handle']>[1]) =>
    join(options, (c) => c.handle('slow', handler));

  it('an abort after a promotion picked up the waiting request: the caller is not told "not written" while it commits', async () => {
    // Another owner holds the primary lock and nobody serves the socket: the request waits, unsent.
    const lock = PrimaryLock.open(primaryLockPath(file('app.db')));
    const holder = {};
    expect(lock.tryAcquire(holder)).toBe(true);
    const slow = slowAdd();
    const node = await member({}, slow.handler);
    expect(node.metrics().cluster?.role).toBe('secondary');
    const controller = new AbortController();
    const call = settle(
      node.submit({ method: 'slow', params: { key: 'k1', ms: 300 } }, { signal: controller.signal, timeoutMs: 10_000 }),
    );
    lock.release(holder); // the node promotes itself and runs its waiting request here
    await slow.running;
    controller.abort();
    const outcome = await call;
    await node.run(() => undefined); // queued behind the slow job: it has committed (or rolled back)
    const rows = keys();
    expect({ claim: claimOf(outcome), rows }).toEqual({
      claim: rows.length === 0 ? expect.stringMatching(/not written/) : expect.stringMatching(/^(written|maybe)/),
      rows,
    });
  });

  it('close() while a promotion waits for its requests table: the stopped node does not start listening afterwards', async () => {
    const lock = PrimaryLock.open(primaryLockPath(file('app.db')));
    const holder = {};
    expect(lock.tryAcquire(holder)).toBe(true);
    const slow = slowAdd();
    const node = await member({}, slow.handler);
    const call = settle(node.submit({ method: 'slow', params: { key: 'k4', ms: 300 } }, { timeoutMs: 10_000 }));
    lock.release(holder); // promote(): role primary at once, then awaits the table's job, then listens
    await slow.running;
    await node.close(1_000); // drains, leaves the cluster (no server yet), frees the lock
    await call;
    await sleep(200);
    expect(existsSync(file('app.db.wc.sock')) ? 'a socket is served after close()' : 'no socket').toBe('no socket');
  });

  it('a secondary closing while its forwarded request runs on the primary: not told "retryable" while it commits', async () => {
    const slow = slowAdd();
    const primary = await member({}, slow.handler);
    const secondary = await member({}, slow.handler);
    expect(secondary.metrics().cluster?.role).toBe('secondary');
    const call = settle(secondary.submit({ method: 'slow', params: { key: 'k2', ms: 300 } }, { timeoutMs: 10_000 }));
    await slow.running; // on the primary, inside its job
    await secondary.close(20);
    const outcome = await call;
    await primary.run(() => undefined);
    const rows = keys();
    expect(rows).toEqual(['k2']);
    expect(claimOf(outcome)).not.toMatch(/^certainly not written/);
  });

  it('a request the draining primary refused (DRAINING) and nobody ran is UNAVAILABLE at its deadline, not "maybe written"', async () => {
    const slow = slowAdd();
    const primary = await member({}, slow.handler);
    const secondary = await member({ cluster: { role: 'secondary' } }, slow.handler);
    const blocker = primary.run(() => sleep(1_500));
    const closing = primary.close(5_000); // drains: the long job keeps it draining
    await sleep(20);
    const outcome = await settle(
      secondary.submit({ method: 'slow', params: { key: 'k3', ms: 0 } }, { timeoutMs: 400 }),
    );
    await blocker;
    await closing;
    expect(keys()).toEqual([]);
    expect(outcome).toMatchObject({ ok: false, code: 'UNAVAILABLE', retryable: true });
  });
});

describe('cluster review: a secondary in this process, its primary a real process', () => {
  let lib: ReturnType<typeof compileLibrary>;
  let tmp: ReturnType<typeof tempDir>;
  let primary: Member | undefined;
  let dataSource: DataSource | undefined;
  let secondary: Coordinator | undefined;

  beforeAll(() => (lib = compileLibrary()));
  afterAll(() => lib.cleanup());
  beforeEach(() => (tmp = tempDir('wc-cluster-review-')));
  afterEach(async () => {
    primary?.kill();
    await secondary?.close(500).catch(() => undefined);
    await dataSource?.destroy();
    tmp.cleanup();
  });

  it('an abort after the primary died with the request unanswered settles at once as CANCELLED, not TIMEOUT at the deadline', async () => {
    const database = tmp.file('app.db');
    createSchema(database);
    primary = await Member.start(lib.core, database, { retryMs: 10 }, {}, { APPEND_SLEEP_MS: '5000' });
    dataSource = await openDataSource(database);
    secondary = new Coordinator({ cluster: { role: 'secondary', retryMs: 10 } });
    secondary.handle('append', () => undefined); // same handler names as the primary; never runs here
    await secondary.attach(dataSource);
    const node = secondary;
    await until('the secondary to connect', () => node.metrics().cluster?.peers === 1);
    const controller = new AbortController();
    const call = settle(
      node.submit({ method: 'append', params: { tag: 't1' } }, { signal: controller.signal, timeoutMs: 3_000 }),
    );
    await until(
      'the request to run on the primary',
      async () => (await primary!.metrics()).cluster.forwardedInFlight === 1,
    );
    primary.kill('SIGKILL');
    await until('the secondary to lose its primary', () => node.metrics().cluster?.peers === 0);
    controller.abort();
    const outcome = await call;
    // Aborted by its caller: CANCELLED (maybe written, so not retryable), not a TIMEOUT 3 s later.
    expect(outcome).toMatchObject({ ok: false, code: 'CANCELLED', retryable: false });
  });

  it('a forwarded submit() runs with its params as they were when called, even if the caller changes them before the resend', async () => {
    const database = tmp.file('app.db');
    createSchema(database);
    primary = await Member.start(lib.core, database, { retryMs: 10 }, {}, { APPEND_SLEEP_MS: '5000' });
    dataSource = await openDataSource(database);
    secondary = new Coordinator({ cluster: { retryMs: 10 } }); // auto: it takes over when the primary dies
    secondary.handle('append', async (params, manager) => {
      const { tag } = params as { tag: string };
      await manager.query('INSERT INTO entry (tag, writer) VALUES (?, ?)', [tag, process.pid]);
      return { tag };
    });
    await secondary.attach(dataSource);
    const node = secondary;
    await until('the secondary to connect', () => node.metrics().cluster?.peers === 1);
    const params = { tag: 'as-called' };
    const call = settle(
      node.submit({ method: 'append', params, meta: { requestId: 'snapshot-1' } }, { timeoutMs: 10_000 }),
    );
    await until(
      'the request to run on the primary',
      async () => (await primary!.metrics()).cluster.forwardedInFlight === 1,
    );
    params.tag = 'changed-later'; // the caller reuses its object
    primary.kill('SIGKILL'); // uncommitted there: the request is sent again, to whoever takes over
    expect(await call).toMatchObject({ ok: true, value: { tag: 'as-called' } });
    const db = new Database(database, { readonly: true });
    try {
      expect(db.prepare('SELECT tag FROM entry').all()).toEqual([{ tag: 'as-called' }]);
    } finally {
      db.close();
    }
  });
});

describe('cluster review: Nest apps', () => {
  let tmp: ReturnType<typeof tempDir>;
  const apps: INestApplication[] = [];

  beforeEach(() => (tmp = tempDir('wc-cluster-review-nest-')));
  afterEach(async () => {
    for (const app of apps.splice(0).reverse()) await app.close();
    tmp.cleanup();
  });

  @Injectable()
  class Seeder implements OnModuleInit {
    constructor(private readonly moduleRef: ModuleRef) {}

    async onModuleInit(): Promise<void> {
      await this.moduleRef
        .get(WriteCoordinator, { strict: false })
        .submit({ method: 'seed.add', params: { key: 'seed' } }, { timeoutMs: 1_500 });
    }

    @WriteHandler('seed.add')
    async add(params: { key: string }, manager: EntityManager): Promise<string> {
      await manager.insert(Item, { key: params.key, job: 0, step: 0 });
      return params.key;
    }
  }

  @Module({ providers: [Seeder] })
  class SeedModule {}

  it.each([
    ['without the cluster option (control)', {}],
    ['with the cluster option', { cluster: { retryMs: 10 } }],
  ])("submit() awaited in a provider's onModuleInit boots the app %s", async (_name, coordinator) => {
    const app = await createTestingApp({
      database: tmp.file('app.db'),
      coordinator,
      imports: [{ module: SeedModule }],
    }).catch((error: Error) => error);
    if (!(app instanceof Error)) apps.push(app);
    expect(app instanceof Error ? `${(app as { code?: string }).code}: ${app.message}` : 'booted').toBe('booted');
  });

  @Injectable({ scope: Scope.REQUEST })
  class ScopedItems {
    constructor(@InjectRepository(Item) private readonly items: Repository<Item>) {}

    @SerializedWrite({ forward: true, name: 'scoped.add' })
    async add(key: string): Promise<string> {
      await this.items.insert({ key, job: 0, step: 0 });
      return key;
    }
  }

  @Module({ imports: [TypeOrmModule.forFeature([Item])], providers: [ScopedItems] })
  class ScopedModule {}

  it('@SerializedWrite({ forward: true }) on a request-scoped provider of a secondary runs (the explorer says: "runs locally")', async () => {
    const boot = () =>
      createTestingApp({
        database: tmp.file('app.db'),
        coordinator: { cluster: { retryMs: 10 } },
        imports: [{ module: ScopedModule }],
      });
    apps.push(await boot()); // the primary
    const secondary = await boot();
    apps.push(secondary);
    expect(secondary.get(WriteCoordinator).metrics().cluster?.role).toBe('secondary');
    const scoped = await secondary.resolve(ScopedItems);
    await expect(settle(scoped.add('scoped-1'))).resolves.toEqual({ ok: true, value: 'scoped-1' });
  });
});
