import { ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileForChild } from '../../../../test/fixtures/child-module';
import { tempDir } from '../../../../test/fixtures/temp-sqlite';
import { PrimaryLock, PrimaryLockError, primaryLockPath } from './primary-lock';

const WORKER = join(__dirname, '..', '..', '..', '..', 'test', 'fixtures', 'workers', 'primary-lock-worker.cjs');

interface Reply {
  result?: boolean | null;
  attempts?: number;
  at?: number;
  error?: string;
}

/** Another process holding its own `PrimaryLock` (the real one, compiled) on `lockPath`. */
interface LockProcess {
  child: ChildProcess;
  call(op: 'tryAcquire' | 'release' | 'holds' | 'pollAcquire', extra?: object): Promise<Reply>;
}

describe('PrimaryLock', () => {
  let tmp: ReturnType<typeof tempDir>;
  let compiled: ReturnType<typeof compileForChild>;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    tmp = tempDir('wc-primary-lock-');
    compiled = compileForChild(join(__dirname, 'primary-lock.ts'), tmp.dir);
  });
  afterAll(() => tmp.cleanup());
  afterEach(() => {
    for (const child of children.splice(0))
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  let files = 0;
  /** A lock path in a fresh directory of its own. */
  const freshLockPath = () => {
    const dir = join(tmp.dir, `case-${++files}`);
    mkdirSync(dir);
    return primaryLockPath(join(dir, 'app.db'));
  };

  async function lockProcess(lockPath: string): Promise<LockProcess> {
    const child = fork(WORKER, [compiled.js, lockPath], { env: { ...process.env, ...compiled.env }, stdio: 'pipe' });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const pending = new Map<number, (reply: Reply) => void>();
    let ready!: () => void;
    const started = new Promise<void>((resolve) => (ready = resolve));
    child.on('message', (message: Reply & { id?: number; ready?: boolean }) => {
      if (message.ready) ready();
      else pending.get(message.id!)?.(message);
    });
    const exited = once(child, 'exit').then(() => {
      throw new Error(`lock worker exited early: ${stderr}`);
    });
    exited.catch(() => undefined);
    await Promise.race([started, exited]);
    let ids = 0;
    return {
      child,
      call: (op, extra = {}) =>
        Promise.race([
          new Promise<Reply>((resolve) => {
            const id = ++ids;
            pending.set(id, resolve);
            child.send({ id, op, ...extra });
          }),
          exited,
        ]),
    };
  }

  describe('primaryLockPath', () => {
    it('names <database>.primary-lock next to the database, as an absolute path', () => {
      expect(primaryLockPath('/data/app.db')).toBe('/data/app.db.primary-lock');
      expect(primaryLockPath('app.db')).toBe(join(process.cwd(), 'app.db.primary-lock'));
    });

    it('refuses an in-memory database with a PrimaryLockError', () => {
      expect(() => primaryLockPath(':memory:')).toThrow(PrimaryLockError);
    });
  });

  describe('in one process', () => {
    it('is one object for every spelling of the same file (./ and .. segments, a symlinked directory, a symlinked file)', () => {
      const lockPath = freshLockPath();
      const dir = join(lockPath, '..');
      const linkedDir = join(tmp.dir, `link-${files}`);
      symlinkSync(dir, linkedDir);
      // First opened through the symlinked directory, before the file exists.
      const viaLink = PrimaryLock.open(join(linkedDir, 'app.db.primary-lock'));
      expect(existsSync(lockPath)).toBe(true);
      const linkedFile = join(tmp.dir, `file-link-${files}`);
      symlinkSync(lockPath, linkedFile);

      expect(PrimaryLock.open(lockPath)).toBe(viaLink);
      expect(PrimaryLock.open(join(dir, '.', '..', `case-${files}`, './app.db.primary-lock'))).toBe(viaLink);
      expect(PrimaryLock.open(linkedFile)).toBe(viaLink);
      expect(viaLink.path).toBe(lockPath);
      expect(PrimaryLock.open(freshLockPath())).not.toBe(viaLink);
    });

    it('lets one owner at a time hold it: another owner gets false until it is released, then takes it at once', () => {
      const lock = PrimaryLock.open(freshLockPath());
      const a = {};
      const b = {};
      expect(lock.tryAcquire(a)).toBe(true);
      expect(lock.tryAcquire(a)).toBe(true); // already held: still true
      expect(lock.tryAcquire(b)).toBe(false);
      expect([lock.holds(a), lock.holds(b)]).toEqual([true, false]);

      lock.release(b); // b does not hold it: nothing happens
      expect(lock.holds(a)).toBe(true);
      expect(lock.tryAcquire(b)).toBe(false);

      lock.release(a);
      expect(lock.holds(a)).toBe(false);
      expect(lock.tryAcquire(b)).toBe(true);
      expect(lock.tryAcquire(a)).toBe(false);
      lock.release(b);
      expect(lock.tryAcquire(a)).toBe(true); // the handle stayed open through the releases
      lock.release(a);
    });

    it('leaves nothing but the lock file beside the database (its journal is in memory)', () => {
      const lockPath = freshLockPath();
      const lock = PrimaryLock.open(lockPath);
      const owner = {};
      expect(lock.tryAcquire(owner)).toBe(true);
      expect(readdirSync(join(lockPath, '..'))).toEqual(['app.db.primary-lock']);
      lock.release(owner);
    });

    it('throws a PrimaryLockError naming the path when the directory does not exist', () => {
      const lockPath = join(tmp.dir, 'no-such-dir', 'app.db.primary-lock');
      expect(() => PrimaryLock.open(lockPath)).toThrow(PrimaryLockError);
      expect(() => PrimaryLock.open(lockPath)).toThrow(
        `primary lock ${lockPath}: cannot open the lock file (its directory does not exist)`,
      );
    });

    it('throws a PrimaryLockError (not "held elsewhere") when the file is not a SQLite database', () => {
      const lockPath = freshLockPath();
      writeFileSync(
        lockPath,
        'this is not a SQLite database, but it is long enough to have a header of 100 bytes......',
      );
      const lock = PrimaryLock.open(lockPath);
      expect(() => lock.tryAcquire({})).toThrow(PrimaryLockError);
      expect(() => lock.tryAcquire({})).toThrow(/SQLITE_NOTADB/);
    });
  });

  describe('across processes', () => {
    it('another process cannot take it while this process holds it, and takes it once released', async () => {
      const lockPath = freshLockPath();
      const other = await lockProcess(lockPath);
      const lock = PrimaryLock.open(lockPath);
      const owner = {};
      expect(lock.tryAcquire(owner)).toBe(true);
      for (let i = 0; i < 3; i++) expect((await other.call('tryAcquire')).result).toBe(false);

      lock.release(owner);
      expect((await other.call('tryAcquire')).result).toBe(true);
      expect(lock.tryAcquire(owner)).toBe(false);
    });

    it('this process cannot take it while another process holds it, even on the first attempt of a fresh handle', async () => {
      const lockPath = freshLockPath();
      const holder = await lockProcess(lockPath);
      expect((await holder.call('tryAcquire')).result).toBe(true);
      const lock = PrimaryLock.open(lockPath); // opened while held: its first attempt meets the lock
      expect(lock.tryAcquire({})).toBe(false);
      expect(lock.tryAcquire({})).toBe(false);
      expect((await holder.call('holds')).result).toBe(true);
    });

    it('a holder that releases hands it over at once to the next process that asks', async () => {
      const lockPath = freshLockPath();
      const [first, second] = await Promise.all([lockProcess(lockPath), lockProcess(lockPath)]);
      expect((await first.call('tryAcquire')).result).toBe(true);
      expect((await second.call('tryAcquire')).result).toBe(false);
      expect((await first.call('release')).result).toBeNull();
      expect((await second.call('tryAcquire')).result).toBe(true);
      expect((await first.call('tryAcquire')).result).toBe(false);
    });

    it('SIGKILL of the holder lets another process take it within one retry interval', async () => {
      const lockPath = freshLockPath();
      const [holder, waiter] = await Promise.all([lockProcess(lockPath), lockProcess(lockPath)]);
      expect((await holder.call('tryAcquire')).result).toBe(true);
      expect((await waiter.call('tryAcquire')).result).toBe(false);
      const intervalMs = 20;
      const acquired = waiter.call('pollAcquire', { intervalMs });
      await new Promise((resolve) => setTimeout(resolve, 3 * intervalMs)); // the waiter is polling in vain
      const killedAt = Date.now();
      holder.child.kill('SIGKILL');
      const reply = await acquired;
      expect(reply.result).toBe(true);
      expect(reply.attempts).toBeGreaterThan(1); // it really waited for the kill
      console.log(
        `primary lock: taken ${reply.at! - killedAt} ms after SIGKILL of the holder (retry interval ${intervalMs} ms, ${reply.attempts} attempts)`,
      );
    });

    it('can be taken from a file a crashed holder left in the default journal mode, with its -journal file', async () => {
      const lockPath = freshLockPath();
      // A process that holds the file the default way (DELETE journal: BEGIN EXCLUSIVE creates a
      // -journal file) and dies holding it.
      const crash = spawn(
        process.execPath,
        [
          '-e',
          `const D = require('better-sqlite3'); const db = new D(${JSON.stringify(lockPath)});` +
            `db.exec('BEGIN EXCLUSIVE'); process.kill(process.pid, 'SIGKILL');`,
        ],
        { env: { ...process.env, ...compiled.env } },
      );
      await once(crash, 'exit');
      expect(existsSync(`${lockPath}-journal`)).toBe(true);

      const lock = PrimaryLock.open(lockPath);
      const owner = {};
      expect(lock.tryAcquire(owner)).toBe(true);
      expect(existsSync(`${lockPath}-journal`)).toBe(false);
      lock.release(owner);
    });
  });
});
