import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import type { Database as SqliteDatabase } from 'better-sqlite3';
import { WriteCoordinator } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { deferred } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { tempDir } from './fixtures/temp-sqlite';
import { createTestingApp, useTestingApp } from './fixtures/testing-app';

const writerOf = (coordinator: WriteCoordinator) =>
  (coordinator.dataSource!.driver as unknown as { databaseConnection: SqliteDatabase }).databaseConnection;

describe('PRAGMAs of the writing connection', () => {
  const t = useTestingApp();

  it('applies WAL, synchronous FULL, busy_timeout and foreign_keys by default', () => {
    const db = writerOf(t.coordinator);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(10);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
  });
});

describe('PRAGMA options', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('applies the configured synchronous, busy_timeout and foreign_keys', async () => {
    const app = await createTestingApp({
      database: tmp.file('settings.db'),
      coordinator: { synchronous: 'NORMAL', busyTimeoutMs: 25, foreignKeys: false },
    });
    try {
      const db = writerOf(app.get(WriteCoordinator));
      expect(db.pragma('synchronous', { simple: true })).toBe(1);
      expect(db.pragma('busy_timeout', { simple: true })).toBe(25);
      expect(db.pragma('foreign_keys', { simple: true })).toBe(0);
    } finally {
      await app.close();
    }
  });

  it('fails at bootstrap with INVALID_OPTIONS for an in-memory database while readIsolation is on', async () => {
    await expect(createTestingApp({ database: ':memory:' })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      field: 'readIsolation',
      message: expect.stringContaining('readIsolation must be'),
    });
  });

  it('runs on an in-memory database with readIsolation: false', async () => {
    const app = await createTestingApp({ database: ':memory:', coordinator: { readIsolation: false } });
    try {
      const coordinator = app.get(WriteCoordinator);
      await coordinator.run((m) => m.insert(Item, { key: 'a', job: 0, step: 1 }));
      await expect(coordinator.dataSource!.getRepository(Item).count()).resolves.toBe(1);
    } finally {
      await app.close();
    }
  });

  it('fails at bootstrap with INVALID_OPTIONS for an unknown synchronous level', async () => {
    await expect(
      createTestingApp({ database: tmp.file('bad.db'), coordinator: { synchronous: 'FAST' as never } }),
    ).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message:
        "WriteCoordinatorModule: synchronous must be 'OFF', 'NORMAL', 'FULL' or 'EXTRA' (received 'FAST', string)",
    });
  });
});

describe('job transactions start with BEGIN IMMEDIATE', () => {
  const t = useTestingApp();

  it('take the write lock before the work writes anything', async () => {
    const started = deferred();
    const release = deferred();
    const job = t.coordinator.run(async () => {
      started.resolve();
      await release.promise; // nothing written yet
    });
    await started.promise;
    const other = new Database(t.database, { timeout: 0 });
    try {
      expect(() => other.exec('BEGIN IMMEDIATE')).toThrow(expect.objectContaining({ code: 'SQLITE_BUSY' }));
    } finally {
      other.close();
      release.resolve();
    }
    await job;
  });
});

/** Another process holding the write lock: `BEGIN IMMEDIATE`, then `COMMIT` after `holdMs`. */
async function holdWriteLock(
  database: string,
  holdMs: number,
): Promise<{ exited: Promise<unknown>; releasedAt: Promise<number> }> {
  const script = `
    const db = new (require('better-sqlite3'))(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    console.log('locked');
    setTimeout(() => { db.exec('COMMIT'); console.log('released ' + Date.now()); db.close(); }, Number(process.argv[2]));`;
  const child = spawn(process.execPath, ['-e', script, database, String(holdMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  const lines = createInterface({ input: child.stdout! });
  const locked = deferred();
  const released = deferred<number>();
  lines.on('line', (line) => {
    if (line === 'locked') locked.resolve();
    if (line.startsWith('released ')) released.resolve(Number(line.slice('released '.length)));
  });
  child.on('exit', (code) => locked.reject(new Error(`lock holder exited with ${code}`)));
  await locked.promise;
  return { exited, releasedAt: released.promise };
}

describe('a write lock held by another process for 300 ms', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  async function writeWhileLocked(busyBudgetMs: number) {
    const database = tmp.file('locked.db');
    const app = await createTestingApp({ database, coordinator: { busyBudgetMs } });
    try {
      const coordinator = app.get(WriteCoordinator);
      const { exited, releasedAt } = await holdWriteLock(database, 300);
      const outcome = await coordinator
        .run((m) => m.insert(Item, { key: 'waited', job: 0, step: 1 }))
        .then(
          () => ({ committedAt: Date.now(), error: undefined }),
          (error: unknown) => ({ committedAt: undefined, error }),
        );
      await exited;
      return { outcome, releasedAt: await releasedAt, metrics: coordinator.metrics(), keys: committedKeys(database) };
    } finally {
      await app.close();
    }
  }

  it('a job with a 1 s busy budget waits for it and commits', async () => {
    const { outcome, releasedAt, keys } = await writeWhileLocked(1_000);
    expect(outcome.error).toBeUndefined();
    expect(outcome.committedAt).toBeGreaterThanOrEqual(releasedAt); // it committed only after the lock was released
    expect(keys).toEqual(['waited']);
  });

  it('a job with a 100 ms busy budget fails with BUSY (retryable) and writes nothing', async () => {
    const { outcome, metrics, keys } = await writeWhileLocked(100);
    expect(outcome.error).toMatchObject({ code: 'BUSY', retryable: true });
    expect(keys).toEqual([]);
    expect(metrics).toMatchObject({ failed: 1, completed: 0 });
  });
});
