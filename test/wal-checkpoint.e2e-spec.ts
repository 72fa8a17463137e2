import { statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Coordinator, WalCheckpointOptions, WriteCoordinatorOptions } from '@app/write-coordinator';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { LoggedDataSource, openLoggedDataSource } from './fixtures/statement-log';

/**
 * The coordinator's WAL checkpoints on real files, with readers on other connections holding read
 * transactions (what starves SQLite's own checkpoints): the limit holds, the idle checkpoint runs,
 * and no checkpoint ever runs inside a transaction of the writing connection.
 *
 * RELIABILITY_HEAVY=1: readers in worker threads (as other processes would be) and 10× the writes.
 */
const HEAVY = Boolean(process.env.RELIABILITY_HEAVY);
const LIMIT = 512 * 1024;
const CALLERS = HEAVY ? 64 : 32;
const JOBS_PER_CALLER = HEAVY ? 1_000 : 100;
/** Rows of about 0.5 KB (plus as much again in the unique index on `key`): the WAL grows fast. */
const PAD = 'k'.repeat(480);

/** Statements of the writing connection, and the `-wal` file's size sampled before each one. */
interface WalWatch {
  /** Largest size sampled. */
  peak: number;
  /** Largest growth of the file across one COMMIT: one batch. */
  largestCommit: number;
  commits: number;
  stop(): void;
}

/** Samples the `-wal` file before every statement of the writer: every commit is followed by one. */
function watchWal(logged: LoggedDataSource): WalWatch {
  const wal = `${logged.database}-wal`;
  const size = () => statSync(wal, { throwIfNoEntry: false })?.size ?? 0;
  let beforeCommit: number | undefined;
  const watch: WalWatch = { peak: 0, largestCommit: 0, commits: 0, stop: () => (logged.onWriterStatement = undefined) };
  logged.onWriterStatement = (sql) => {
    const bytes = size();
    watch.peak = Math.max(watch.peak, bytes);
    if (beforeCommit !== undefined) watch.largestCommit = Math.max(watch.largestCommit, bytes - beforeCommit);
    beforeCommit = sql === 'COMMIT' ? bytes : undefined;
    if (sql === 'COMMIT') watch.commits++;
  };
  return watch;
}

/**
 * Readers on other connections that keep read transactions open all the time: in-process ones roll
 * over one at a time between event-loop turns, so that at least two always hold a snapshot; heavy
 * mode adds worker threads looping read transactions as other processes would.
 */
function startReaders(database: string): { stop(): Promise<number> } {
  const readers = [0, 1, 2].map(() => new Database(database, { readonly: true }));
  const statements = readers.map((db) => ({
    begin: db.prepare('BEGIN'),
    count: db.prepare('SELECT count(*) FROM items'),
    commit: db.prepare('COMMIT'),
  }));
  let rolls = 0;
  let stopped = false;
  for (const s of statements) {
    s.begin.run();
    s.count.get();
  }
  const roll = () => {
    if (stopped) return;
    const s = statements[rolls++ % statements.length];
    s.commit.run();
    s.begin.run();
    s.count.get(); // takes the snapshot
    setImmediate(roll);
  };
  setImmediate(roll);
  const stop = new SharedArrayBuffer(4);
  const workers = HEAVY
    ? [0, 1, 2, 3].map(
        () =>
          new Worker(join(__dirname, 'fixtures/workers/wal-reader.cjs'), {
            workerData: { database, table: 'items', stop },
          }),
      )
    : [];
  return {
    async stop() {
      stopped = true;
      Atomics.store(new Int32Array(stop), 0, 1);
      await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('exit', resolve))));
      for (const db of readers) db.close();
      return rolls;
    },
  };
}

/**
 * CALLERS callers, each awaiting its one-row insert job before sending the next. Keys grow in
 * submission order, so that a batch appends to the index rather than splitting pages all over it.
 */
async function sustainedWrites(coordinator: Coordinator): Promise<void> {
  let seq = 0;
  await Promise.all(
    Array.from({ length: CALLERS }, async (_, caller) => {
      for (let i = 0; i < JOBS_PER_CALLER; i++) {
        const key = `${String(seq++).padStart(8, '0')}-${PAD}`;
        await coordinator.run((manager) => manager.insert(Item, { key, job: caller, step: i }));
      }
    }),
  );
}

/** {@link sustainedWrites} while {@link startReaders}' readers hold the log, the `-wal` file watched. */
async function writeUnderReaders(logged: LoggedDataSource, coordinator: Coordinator): Promise<WalWatch> {
  const watch = watchWal(logged);
  const readers = startReaders(logged.database);
  try {
    await sustainedWrites(coordinator);
  } finally {
    watch.stop();
    await readers.stop();
  }
  return watch;
}

async function coordinatorOn(
  logged: LoggedDataSource,
  walCheckpoint: WalCheckpointOptions | false,
  options: WriteCoordinatorOptions = {},
) {
  const coordinator = new Coordinator({ synchronous: 'OFF', maxBatchSize: 16, walCheckpoint, ...options });
  await coordinator.attach(logged.dataSource);
  logged.clear();
  return coordinator;
}

/** Rejects after `ms` unless `promise` settled first (so that a missing event fails fast). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(what)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe('WAL checkpoints', () => {
  let logged: LoggedDataSource;
  beforeEach(async () => (logged = await openLoggedDataSource()));
  afterEach(() => logged.close());

  describe('when readers on other connections hold read transactions under sustained writes', () => {
    jest.setTimeout(HEAVY ? 300_000 : 30_000);

    it('keeps the -wal file within maxWalBytes plus one batch, sampled after every commit', async () => {
      const coordinator = await coordinatorOn(logged, { maxWalBytes: LIMIT, idleMs: false });
      const watch = await writeUnderReaders(logged, coordinator);
      const { wal, completed } = coordinator.metrics();
      await coordinator.close();

      expect(completed).toBe(CALLERS * JOBS_PER_CALLER);
      expect(watch.commits).toBeGreaterThan(0);
      expect(watch.largestCommit).toBeLessThan(LIMIT / 4); // one batch is small next to the limit
      expect(watch.peak).toBeLessThanOrEqual(LIMIT + watch.largestCommit);
      // The readers were in the way (TRUNCATE had to wait for them) and the limit was enforced each time.
      expect(wal).toMatchObject({ maxWalBytes: LIMIT, gaveUp: 0, failed: 0 });
      expect(wal.busy).toBeGreaterThan(0);
      expect(wal.truncations).toBeGreaterThan(0);
      expect(wal.peakBytes).toBe(watch.peak);
    });

    it('lets the -wal file grow past the limit when checkpoints are left to SQLite (the control)', async () => {
      const coordinator = await coordinatorOn(logged, false);
      const watch = await writeUnderReaders(logged, coordinator);
      const { wal } = coordinator.metrics();
      await coordinator.close();

      expect(watch.peak).toBeGreaterThan(4 * LIMIT);
      expect(wal).toMatchObject({ maxWalBytes: false, truncations: 0, idleCheckpoints: 0 });
    });
  });

  describe('when a reader holds one snapshot for good and jobs have deadlines shorter than waitMs', () => {
    it('never costs a job its deadline, and gives the limit up after waitMs in all', async () => {
      const coordinator = await coordinatorOn(
        logged,
        { maxWalBytes: 64 * 1024, waitMs: 600, idleMs: false },
        {
          timeoutMs: 150,
        },
      );
      const reader = new Database(logged.database, { readonly: true });
      const outcomes: string[] = [];
      try {
        reader.prepare('BEGIN').run();
        reader.prepare('SELECT count(*) FROM items').get(); // holds its snapshot: no TRUNCATE can finish
        for (let i = 0; i < 200; i++)
          await coordinator.run((m) => m.insert(Item, { key: `f${i}-${PAD}`, job: 0, step: i }));
        for (let i = 0; i < 20; i++) {
          await coordinator
            .run((m) => m.insert(Item, { key: `s${i}-${PAD}`, job: 1, step: i }))
            .then(
              () => outcomes.push('ok'),
              (error: { code?: string }) => outcomes.push(error.code ?? String(error)),
            );
        }
      } finally {
        reader.close();
      }
      const { wal, timedOut } = coordinator.metrics();
      await coordinator.close();

      // Each job was held at most half of its 150 ms, then went on; the clock ran across jobs.
      expect(outcomes).toEqual(Array(20).fill('ok'));
      expect(timedOut).toBe(0);
      expect(wal.busy).toBeGreaterThan(0);
      expect(wal.gaveUp).toBeGreaterThanOrEqual(1);
    }, 30_000);
  });

  describe('when the queue goes idle after writes', () => {
    it('runs one PASSIVE checkpoint on the writing connection after the last commit', async () => {
      const coordinator = await coordinatorOn(logged, { idleMs: 5, maxWalBytes: false });
      const checkpointed = deferred();
      const log: string[] = [];
      logged.onWriterStatement = (sql) => {
        log.push(sql);
        if (sql.startsWith('PRAGMA wal_checkpoint')) checkpointed.resolve();
      };
      const dbBytesBefore = statSync(logged.database).size;
      await Promise.all(
        Array.from({ length: 8 }, (_, caller) =>
          coordinator.run((manager) => manager.insert(Item, { key: `${caller}-${PAD}`, job: caller, step: 0 })),
        ),
      );
      expect(coordinator.metrics().wal.idleCheckpoints).toBe(0);

      await within(checkpointed.promise, 5_000, 'no checkpoint ran once the queue was idle');
      const { wal } = coordinator.metrics();
      await coordinator.close();

      expect(log.filter((sql) => sql.startsWith('PRAGMA wal_checkpoint'))).toEqual(['PRAGMA wal_checkpoint(PASSIVE)']);
      expect(log.lastIndexOf('COMMIT')).toBeLessThan(log.indexOf('PRAGMA wal_checkpoint(PASSIVE)'));
      expect(wal).toMatchObject({ idleCheckpoints: 1, truncations: 0, failed: 0 });
      // The rows were copied back into the database file: every frame of the log is checkpointed.
      expect(statSync(logged.database).size).toBeGreaterThan(dbBytesBefore);
      const other = new Database(logged.database);
      try {
        const [row] = other.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number; checkpointed: number }>;
        expect(row.checkpointed).toBe(row.log);
      } finally {
        other.close();
      }
    });
  });

  describe('when jobs hold their transaction across event-loop turns', () => {
    it('never runs a checkpoint while the writing connection has a transaction open', async () => {
      // Past the limit after every commit, and an idle timer that fires while jobs are open.
      const coordinator = await coordinatorOn(logged, { maxWalBytes: 1, idleMs: 1 });
      const idle = deferred();
      let writesDone = false;
      const log: string[] = [];
      logged.onWriterStatement = (sql) => {
        log.push(sql);
        if (writesDone && sql.startsWith('PRAGMA wal_checkpoint')) idle.resolve();
      };
      const slowJob = (caller: number, i: number) =>
        coordinator.run(async (manager) => {
          await manager.insert(Item, { key: `${caller}-${i}-a`, job: caller, step: i });
          await new Promise((resolve) => setTimeout(resolve, 2)); // the transaction stays open
          await manager.insert(Item, { key: `${caller}-${i}-b`, job: caller, step: i });
        });
      await Promise.all(
        Array.from({ length: 8 }, async (_, caller) => {
          for (let i = 0; i < 5; i++) await slowJob(caller, i);
        }),
      );
      // A write outside any job (its own job) and a transaction TypeORM's runner opens itself.
      await logged.dataSource.manager.insert(Item, { key: 'outside', job: -1, step: 0 });
      const runner = logged.dataSource.createQueryRunner();
      await runner.startTransaction();
      await runner.manager.insert(Item, { key: 'held', job: -2, step: 0 });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await runner.commitTransaction();
      writesDone = true;
      await within(idle.promise, 5_000, 'no idle checkpoint ran');
      const { wal } = coordinator.metrics();
      await coordinator.close();

      let open = false;
      const inside: string[] = [];
      for (const sql of log) {
        if (sql.startsWith('BEGIN')) open = true;
        else if (sql === 'COMMIT' || sql === 'ROLLBACK') open = false;
        else if (sql.startsWith('PRAGMA wal_checkpoint') && open) inside.push(sql);
      }
      expect(inside).toEqual([]);
      // Not vacuous: checkpoints ran between jobs and when idle, with batches of several jobs.
      expect(wal.truncations).toBeGreaterThan(0);
      expect(wal.idleCheckpoints).toBeGreaterThan(0);
      expect(coordinator.metrics().batches.largest).toBeGreaterThan(1);
    });
  });
});
