import { DataSource } from 'typeorm';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { useTestingApp } from './fixtures/testing-app';

/** Every way an outside read can ask for the items, each returning the keys it saw. */
const READS: Array<[string, (ds: DataSource) => Promise<string[]>]> = [
  ['Repository.find', async (ds) => (await ds.getRepository(Item).find()).map((i) => i.key)],
  [
    'Repository.findOneBy',
    async (ds) => [(await ds.getRepository(Item).findOneBy({ key: 'k' }))?.key ?? ''].filter(Boolean),
  ],
  ['Repository.count', async (ds) => Array.from({ length: await ds.getRepository(Item).count() }, () => 'k')],
  ['SelectQueryBuilder.getMany', async (ds) => (await ds.createQueryBuilder(Item, 'i').getMany()).map((i) => i.key)],
  ['DataSource.query (SELECT)', async (ds) => ((await ds.query('SELECT key FROM items')) as Item[]).map((i) => i.key)],
  [
    'DataSource.query (WITH … SELECT)',
    async (ds) => ((await ds.query('WITH k AS (SELECT key FROM items) SELECT key FROM k')) as Item[]).map((i) => i.key),
  ],
];

/** Runs a job that writes `k` and stays open until `reads` has run from outside it. */
async function readDuringOpenJob(
  t: { coordinator: import('@app/write-coordinator').WriteCoordinator },
  reads: () => Promise<void>,
): Promise<string[]> {
  const written = deferred();
  const release = deferred();
  const job = t.coordinator.run(async (m) => {
    await m.insert(Item, { key: 'k', job: 1, step: 1 });
    written.resolve();
    await release.promise;
    return (await m.find(Item)).map((i) => i.key); // inside the job: its own write is visible
  });
  await written.promise;
  try {
    await reads();
  } finally {
    release.resolve();
  }
  return job;
}

describe('reads outside jobs (readIsolation, default on)', () => {
  const t = useTestingApp();

  it.each(READS)("%s never sees a running job's uncommitted rows, and sees them once committed", async (_, read) => {
    const ds = t.coordinator.dataSource!;
    const seenInside = await readDuringOpenJob(t, async () => {
      expect(await read(ds)).toEqual([]);
    });
    expect(seenInside).toEqual(['k']);
    expect(await read(ds)).toEqual(['k']);
  });

  it('a read inside a job sees its own writes; reads outside do not wait for the job', async () => {
    const ds = t.coordinator.dataSource!;
    let outsideReads = 0;
    await readDuringOpenJob(t, async () => {
      for (let i = 0; i < 20; i++) {
        expect(await ds.getRepository(Item).count()).toBe(0);
        outsideReads++;
      }
    });
    expect(outsideReads).toBe(20);
    expect(t.coordinator.metrics()).toMatchObject({ completed: 1 });
  });
});

describe('reads outside jobs with readIsolation: false (what the read connection prevents)', () => {
  const t = useTestingApp({ coordinator: { readIsolation: false } });

  it("sees a running job's uncommitted rows", async () => {
    const ds = t.coordinator.dataSource!;
    await readDuringOpenJob(t, async () => {
      expect((await ds.getRepository(Item).find()).map((i) => i.key)).toEqual(['k']);
    });
  });
});
