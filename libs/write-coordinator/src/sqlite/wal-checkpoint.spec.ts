import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tempDir } from '../../../../test/fixtures/temp-sqlite';
import { WalCheckpointPolicy } from './wal-checkpoint';
import { ResolvedWalCheckpoint, WAL_CHECKPOINT_DEFAULTS } from './wal-checkpoint.options';

const IDLE_QUEUE = { metrics: () => ({ running: 0, queueDepth: 0 }) };

describe('WalCheckpointPolicy', () => {
  let tmp: ReturnType<typeof tempDir>;
  let db: Database.Database;
  let warnings: string[];
  beforeEach(() => {
    tmp = tempDir('wc-wal-');
    db = new Database(tmp.file('wal.db'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (v TEXT)');
    warnings = [];
  });
  afterEach(() => {
    if (db.open) db.close();
    tmp.cleanup();
  });

  const policy = (settings: Partial<ResolvedWalCheckpoint> | false = {}) =>
    new WalCheckpointPolicy(
      db,
      settings && { ...WAL_CHECKPOINT_DEFAULTS, idleMs: false, ...settings },
      IDLE_QUEUE,
      (message) => warnings.push(message),
    );
  /** One committed write of about 4 KB, told to the policy as the coordinator does. */
  const commit = (wal: WalCheckpointPolicy) => {
    db.prepare('INSERT INTO t VALUES (?)').run('x'.repeat(4000));
    wal.committed();
  };
  const job = () => ({ signal: new AbortController().signal });

  it('reports the size of the -wal file and the largest size seen', () => {
    const wal = policy(false);
    commit(wal);
    commit(wal);
    const bytes = statSync(`${db.name}-wal`).size;
    expect(wal.metrics()).toMatchObject({ bytes, peakBytes: bytes, maxWalBytes: false, truncations: 0 });
  });

  it('reports nothing and never checkpoints an in-memory database', () => {
    db.close();
    db = new Database(':memory:');
    db.exec('CREATE TABLE t (v TEXT)');
    const wal = policy({ maxWalBytes: 1 });
    commit(wal);
    expect(wal.beforeJob(job())).toBeUndefined();
    expect(wal.metrics()).toMatchObject({ bytes: 0, peakBytes: 0, truncations: 0 });
  });

  it('asks the next job to wait for nothing while the file is within the limit', () => {
    const wal = policy({ maxWalBytes: 1024 * 1024 });
    commit(wal);
    expect(wal.beforeJob(job())).toBeUndefined();
  });

  it('empties the file before the next job once a commit left it past the limit', async () => {
    const wal = policy({ maxWalBytes: 1 });
    commit(wal);
    await wal.beforeJob(job());
    expect(statSync(`${db.name}-wal`).size).toBe(0);
    expect(wal.metrics()).toMatchObject({ truncations: 1, busy: 0, bytes: 0 });
    expect(wal.beforeJob(job())).toBeUndefined(); // done until the next commit past the limit
  });

  describe('when a reader holds its snapshot for longer than waitMs', () => {
    it('gives up, warns, lets writes go on, and does not ask again for waitMs', async () => {
      const wal = policy({ maxWalBytes: 1, waitMs: 20 });
      commit(wal);
      const reader = new Database(db.name, { readonly: true });
      try {
        reader.prepare('BEGIN').run();
        reader.prepare('SELECT count(*) FROM t').get();
        await wal.beforeJob(job());
        commit(wal);
        expect(wal.beforeJob(job())).toBeUndefined();
      } finally {
        reader.close();
      }
      const metrics = wal.metrics();
      expect(metrics).toMatchObject({ gaveUp: 1, truncations: 0, failed: 0 });
      expect(metrics.busy).toBeGreaterThan(1); // retried before giving up
      expect(warnings).toEqual([expect.stringContaining('readers kept a TRUNCATE checkpoint out for 20 ms')]);
    });

    it('stops waiting when the job it holds is aborted', async () => {
      const wal = policy({ maxWalBytes: 1, waitMs: 60_000 });
      commit(wal);
      const reader = new Database(db.name, { readonly: true });
      try {
        reader.prepare('BEGIN').run();
        reader.prepare('SELECT count(*) FROM t').get();
        const controller = new AbortController();
        const waiting = wal.beforeJob({ signal: controller.signal });
        controller.abort();
        await waiting;
      } finally {
        reader.close();
      }
      expect(wal.metrics()).toMatchObject({ gaveUp: 0, truncations: 0 });
      // Still due: the next job truncates (the reader has left now).
      await expect(wal.beforeJob(job())).resolves.toBeUndefined();
      expect(wal.metrics()).toMatchObject({ gaveUp: 0, truncations: 1 });
    });
  });

  it('restores busy_timeout after a TRUNCATE attempt', async () => {
    db.pragma('busy_timeout = 25');
    const wal = policy({ maxWalBytes: 1 });
    commit(wal);
    await wal.beforeJob(job());
    expect(db.pragma('busy_timeout', { simple: true })).toBe(25);
  });

  it('runs no idle checkpoint once stopped (the coordinator gave the connection back)', async () => {
    const wal = policy({ idleMs: 5 });
    commit(wal);
    wal.stop(); // the timer armed by that commit is cancelled
    commit(wal); // and no new one is armed
    await new Promise((resolve) => setTimeout(resolve, 100)); // 20 times the idle delay
    expect(wal.metrics().idleCheckpoints).toBe(0);
    expect(statSync(`${db.name}-wal`).size).toBeGreaterThan(0);
  });

  it('checkpoints when idle if not stopped (the control of the previous case)', async () => {
    const wal = policy({ idleMs: 5 });
    commit(wal);
    commit(wal);
    // The timer re-arms once (a commit came after it was armed), then checkpoints: wait for it,
    // within a bound far above the 10 ms it needs (timers run late on a loaded machine).
    for (let waited = 0; wal.metrics().idleCheckpoints === 0 && waited < 2_000; waited += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(wal.metrics().idleCheckpoints).toBe(1);
  });

  it('never throws from committed() or metrics() when the size of the -wal file cannot be read (EIO)', () => {
    let failing = false;
    const wal = new WalCheckpointPolicy(
      db,
      { ...WAL_CHECKPOINT_DEFAULTS, idleMs: false, maxWalBytes: 1024 },
      IDLE_QUEUE,
      (message) => warnings.push(message),
      (path) => {
        // A disk that fails under the file (no way to make a real one fail here).
        if (failing) throw Object.assign(new Error('EIO: i/o error, stat'), { code: 'EIO' });
        return statSync(path).size;
      },
    );
    commit(wal);
    const known = wal.metrics().bytes;
    failing = true;
    expect(() => commit(wal)).not.toThrow(); // the commit hook: every job of the batch must still be settled
    expect(() => wal.metrics()).not.toThrow(); // health checks and scrapes
    expect(wal.metrics()).toMatchObject({ bytes: known, failed: 3, lastError: { code: 'EIO' } });
    expect(warnings[0]).toContain('could not read the size of the -wal file: EIO');
  });
});
