import { setTimeout as sleep } from 'node:timers/promises';
import { DataSource } from 'typeorm';
import { committedKeys } from '../../../../test/fixtures/committed-rows';
import { Item } from '../../../../test/fixtures/item.entity';
import { openDataSource, sqliteOptions, tempDir } from '../../../../test/fixtures/temp-sqlite';
import type { JobInfo } from '../queue/queue.types';
import { Coordinator } from './coordinator';

/** The Nest-free Coordinator on a real SQLite file: attach, run, submit, close, and their edges. */
describe('Coordinator (without Nest)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let ds: DataSource;
  const silent = { log: () => undefined, warn: () => undefined, error: () => undefined };
  const item = (key: string) => ({ key, job: 0, step: 0 });

  beforeEach(async () => {
    tmp = tempDir();
    ds = await openDataSource(tmp.file('plain.db'));
  });
  afterEach(async () => {
    if (ds.isInitialized) await ds.destroy();
    tmp.cleanup();
  });

  it('serialises writes once attached, and gives the DataSource back at close(): plain TypeORM and another coordinator work after', async () => {
    const c = new Coordinator({}, { log: silent });
    await expect(c.run((m) => m.insert(Item, item('early')))).rejects.toMatchObject({
      code: 'COORDINATOR_NOT_READY',
      message: expect.stringContaining('attach(dataSource)'),
    });
    await c.attach(ds);
    c.handle('item.add', (params, m) => m.insert(Item, item((params as { key: string }).key)).then(() => 'ok'));
    await Promise.all([
      c.run((m) => m.insert(Item, item('a'))),
      c.submit({ method: 'item.add', params: { key: 'b' } }),
    ]);
    await c.close();
    await expect(c.run(() => undefined)).rejects.toMatchObject({ code: 'SHUTDOWN' });
    await ds.getRepository(Item).insert(item('plain')); // no router left on the runner
    const next = new Coordinator({}, { log: silent });
    await next.attach(ds);
    await next.run((m) => m.insert(Item, item('next')));
    await next.close();
    expect(committedKeys(tmp.file('plain.db'))).toEqual(['a', 'b', 'plain', 'next']);
  });

  it('keeps refusing writes after close() until an abandoned job settled: none lands in its transaction', async () => {
    const c = new Coordinator({}, { log: silent });
    await c.attach(ds);
    let release!: () => void;
    const stalled = c
      .run(async (m) => {
        await m.insert(Item, item('stalled'));
        await new Promise<void>((resolve) => (release = resolve));
      })
      .catch((e: { code?: string }) => e.code);
    await sleep(20);
    await c.close(50); // grace, then 1 s, then its caller gets SHUTDOWN
    expect(await stalled).toBe('SHUTDOWN');
    await expect(ds.getRepository(Item).insert(item('meanwhile'))).rejects.toMatchObject({ code: 'SHUTDOWN' });
    release();
    await sleep(50);
    await ds.getRepository(Item).insert(item('after'));
    expect(committedKeys(tmp.file('plain.db'))).toEqual(['after']);
  });

  it('refuses a DataSource not initialised, and one another coordinator serialises without touching its PRAGMAs', async () => {
    const fresh = new DataSource(sqliteOptions(tmp.file('fresh.db')));
    await expect(new Coordinator({}, { log: silent }).attach(fresh)).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      field: 'dataSource',
    });
    const owner = new Coordinator({ synchronous: 'FULL' }, { log: silent });
    await owner.attach(ds);
    const pragma = (name: string) =>
      (
        ds.driver as unknown as { databaseConnection: { pragma(s: string, o: object): unknown } }
      ).databaseConnection.pragma(name, { simple: true });
    const before = [pragma('synchronous'), pragma('foreign_keys')];
    await expect(
      new Coordinator({ synchronous: 'OFF', foreignKeys: false }, { log: silent }).attach(ds),
    ).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    expect([pragma('synchronous'), pragma('foreign_keys')]).toEqual(before);
    await expect(owner.attach(ds)).rejects.toMatchObject({ message: expect.stringContaining('already attached') });
    await owner.close();
  });

  it("gives event hooks copies of the jobs' identities, never the queue's own records", async () => {
    const seen: JobInfo[] = [];
    const c = new Coordinator({}, { log: silent, events: { jobAccepted: (job) => seen.push(job) } });
    await c.attach(ds);
    await c.run(() => 'ok', { label: 'probe' });
    expect(seen).toHaveLength(1);
    expect(Object.keys(seen[0]).sort()).toEqual(['jobId', 'label']);
    expect(Object.isFrozen(seen[0])).toBe(true);
    await c.close();
  });

  it('checks its arguments: options (named after the Coordinator), close(graceMs), handle()', async () => {
    expect(() => new Coordinator({ queueSize: 2.5 })).toThrow('Coordinator: queueSize must be an integer');
    expect(() => new Coordinator({ shutdownGraceMs: 3_000_000_000 })).toThrow('at most 2147483647 ms');
    const c = new Coordinator({}, { log: silent });
    await c.attach(ds);
    await expect(c.close(3_000_000_000)).rejects.toMatchObject({ code: 'INVALID_OPTIONS', field: 'graceMs' });
    expect(() => c.handle('x', 123 as never)).toThrow('Coordinator.handle(): fn must be a function');
    await c.close();
  });
});
