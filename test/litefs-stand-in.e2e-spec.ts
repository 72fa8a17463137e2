import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './fixtures/temp-sqlite';
import { EventRecorder } from './litefs-stand-in/event-recorder';
import { ROLE_FILE } from './litefs-stand-in/node-files';
import { NodeProcess } from './litefs-stand-in/node-process';
import { LiteFsStandIn } from './litefs-stand-in/stand-in';

jest.setTimeout(60_000);

const NODES = ['node-a', 'node-b', 'node-c'] as const;
type NodeName = (typeof NODES)[number];

interface Cluster {
  standIn: LiteFsStandIn;
  app: Record<NodeName, NodeProcess>;
  events: Record<NodeName, EventRecorder>;
}

interface Written {
  pos: string;
}

const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A stand-in with three nodes, one worker process and one event stream reader per node. */
async function startCluster(replicationDelayMs: number, journalMode: 'wal' | 'delete' = 'wal'): Promise<Cluster> {
  const dir = tempDir('litefs-stand-in-');
  cleanups.push(dir.cleanup);
  const standIn = await LiteFsStandIn.start({
    root: dir.dir,
    nodes: NODES,
    primary: 'node-a',
    replicationDelayMs,
    journalMode,
  });
  cleanups.push(() => standIn.stop());
  const app = {} as Record<NodeName, NodeProcess>;
  const events = {} as Record<NodeName, EventRecorder>;
  for (const name of NODES) {
    events[name] = await EventRecorder.connect(standIn.node(name).eventsUrl);
    cleanups.push(() => events[name].close());
    app[name] = await NodeProcess.start(standIn.node(name), journalMode);
    cleanups.push(() => app[name].stop());
  }
  return { standIn, app, events };
}

const txIDOf = (pos: string) => Number.parseInt(pos.slice(0, 16), 16);
const primaryFile = (cluster: Cluster, name: NodeName) =>
  existsSync(cluster.standIn.node(name).primaryPath)
    ? readFileSync(cluster.standIn.node(name).primaryPath, 'utf8')
    : undefined;
const names = (cluster: Cluster, name: NodeName) =>
  cluster.app[name]
    .call<{ name: string }[]>('all', { sql: 'SELECT name FROM items ORDER BY id' })
    .then((rows) => rows.map((row) => row.name));
const txEvents = (cluster: Cluster, name: NodeName) =>
  cluster.events[name].ofType('tx').map((event) => Number.parseInt(event.data.txID, 16));
const createItems = (cluster: Cluster, name: NodeName = 'node-a') =>
  cluster.app[name].call<Written>('run', { sql: 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)' });
const insert = (cluster: Cluster, name: NodeName, item: string) =>
  cluster.app[name].call<Written>('run', { sql: 'INSERT INTO items (name) VALUES (?)', params: [item] });

describe('LiteFsStandIn (test double of LiteFS)', () => {
  describe('when the primary writes', () => {
    it('advances -pos by one TXID per committed write transaction, already when the write returns', async () => {
      const cluster = await startCluster(60_000);
      const { app, standIn } = cluster;
      expect(standIn.position('node-a').txID).toBe(1);

      expect(txIDOf((await createItems(cluster)).pos)).toBe(2);
      expect(txIDOf((await insert(cluster, 'node-a', 'one')).pos)).toBe(3);
      const both = [1, 2].map((i) => ({ sql: 'INSERT INTO items (name) VALUES (?)', params: [`tx ${i}`] }));
      expect(txIDOf((await app['node-a'].call<Written>('transaction', { statements: both })).pos)).toBe(4);
      const script = "BEGIN; INSERT INTO items (name) VALUES ('s1'); INSERT INTO items (name) VALUES ('s2'); COMMIT";
      expect(txIDOf((await app['node-a'].call<Written>('exec', { sql: script })).pos)).toBe(5);

      // Reads, writes that change nothing and transactions rolled back take no TXID.
      await app['node-a'].call('all', { sql: 'SELECT * FROM items' });
      expect(
        txIDOf((await app['node-a'].call<Written>('run', { sql: "UPDATE items SET name = 'x' WHERE id = -1" })).pos),
      ).toBe(5);
      const failing = [
        { sql: "INSERT INTO items (name) VALUES ('gone')" },
        { sql: 'INSERT INTO items (name) VALUES (NULL)' },
      ];
      await expect(app['node-a'].call('transaction', { statements: failing })).rejects.toMatchObject({
        code: 'SQLITE_CONSTRAINT_NOTNULL',
      });
      expect(standIn.position('node-a')).toMatchObject({ txID: 5, checksum: expect.stringMatching(/^[0-9a-f]{16}$/) });
      expect(readFileSync(standIn.node('node-a').posPath, 'utf8')).toMatch(/^0000000000000005\/[0-9a-f]{16}\n$/);
      await cluster.events['node-a'].until(() => txEvents(cluster, 'node-a').length === 4);
      expect(txEvents(cluster, 'node-a')).toEqual([2, 3, 4, 5]);
    });

    it('counts every transaction once when several processes of the primary write at once', async () => {
      const cluster = await startCluster(60_000);
      const second = await NodeProcess.start(cluster.standIn.node('node-a'));
      cleanups.push(() => second.stop());
      await createItems(cluster);
      await Promise.all([
        cluster.app['node-a'].call('inserts', { count: 200, prefix: 'first' }),
        second.call('inserts', { count: 200, prefix: 'second' }),
      ]);
      expect(cluster.standIn.position('node-a').txID).toBe(402);
      await cluster.events['node-a'].until(() => txEvents(cluster, 'node-a').length === 401);
      expect(new Set(txEvents(cluster, 'node-a')).size).toBe(401);
    });

    it('replicates to every replica only after the delay, then sets its -pos and sends its tx events', async () => {
      const cluster = await startCluster(1500);
      const { app, standIn, events } = cluster;
      await createItems(cluster);
      const { pos } = await insert(cluster, 'node-a', 'one');
      // The stand-in has seen both transactions; a third of the delay later, no replica has them.
      await events['node-a'].until(() => txEvents(cluster, 'node-a').length === 2);
      await new Promise((resolve) => setTimeout(resolve, 500));

      const tables = await app['node-b'].call<unknown[]>('all', {
        sql: "SELECT name FROM sqlite_schema WHERE name = 'items'",
      });
      expect(tables).toEqual([]);
      expect(standIn.position('node-b').txID).toBe(1);

      await standIn.waitForReplication();
      for (const name of ['node-b', 'node-c'] as const) {
        expect(await names(cluster, name)).toEqual(['one']);
        expect(readFileSync(standIn.node(name).posPath, 'utf8')).toBe(pos);
        await events[name].until(() => txEvents(cluster, name).length === 2);
        expect(events[name].ofType('tx')).toEqual([
          { type: 'tx', db: 'app.db', data: expect.objectContaining({ txID: '0000000000000002', pageSize: 4096 }) },
          {
            type: 'tx',
            db: 'app.db',
            data: expect.objectContaining({ txID: '0000000000000003', postApplyChecksum: pos.slice(17, 33) }),
          },
        ]);
      }
      expect(txEvents(cluster, 'node-a')).toEqual([2, 3]);
    });
  });

  describe('on a replica', () => {
    it('refuses every kind of write with SQLITE_IOERR "disk I/O error" in WAL mode, writes nothing, and reads', async () => {
      const cluster = await startCluster(5);
      const { app, standIn } = cluster;
      await createItems(cluster);
      await insert(cluster, 'node-a', 'one');
      await standIn.waitForReplication();
      const before = readFileSync(standIn.node('node-b').posPath, 'utf8');

      const ioerr = { code: 'SQLITE_IOERR', message: 'disk I/O error' };
      await expect(insert(cluster, 'node-b', 'two')).rejects.toMatchObject(ioerr);
      await expect(app['node-b'].call('run', { sql: 'CREATE TABLE other (x)' })).rejects.toMatchObject(ioerr);
      await expect(
        app['node-b'].call('exec', { sql: "INSERT INTO items (name) VALUES ('three')" }),
      ).rejects.toMatchObject(ioerr);
      const statements = [{ sql: "UPDATE items SET name = 'changed'" }];
      await expect(app['node-b'].call('transaction', { statements })).rejects.toMatchObject(ioerr);
      // Inside a transaction the write statement itself fails (stricter than LiteFS: see README.md).
      await app['node-b'].call('run', { sql: 'BEGIN IMMEDIATE' });
      await expect(insert(cluster, 'node-b', 'four')).rejects.toMatchObject(ioerr);
      await app['node-b'].call('run', { sql: 'ROLLBACK' });
      expect(await app['node-b'].call('run', { sql: 'CREATE TEMP TABLE scratch (x)' })).toBeDefined();

      expect(await names(cluster, 'node-b')).toEqual(['one']);
      expect(readFileSync(standIn.node('node-b').posPath, 'utf8')).toBe(before);
      expect(standIn.position('node-a').txID).toBe(3);
      await standIn.waitForReplication();
      expect(await names(cluster, 'node-a')).toEqual(['one']);
    });

    it('refuses writes with SQLITE_READONLY "attempt to write a readonly database" in rollback-journal mode', async () => {
      const cluster = await startCluster(5, 'delete');
      const { app, standIn } = cluster;
      await createItems(cluster);
      await insert(cluster, 'node-a', 'one');
      await standIn.waitForReplication();

      expect(await app['node-b'].call('all', { sql: 'PRAGMA journal_mode' })).toEqual([{ journal_mode: 'delete' }]);
      await expect(insert(cluster, 'node-b', 'two')).rejects.toMatchObject({
        code: 'SQLITE_READONLY',
        message: 'attempt to write a readonly database',
      });
      expect(await names(cluster, 'node-b')).toEqual(['one']);
      expect(standIn.position('node-b').txID).toBe(3);
    });

    it('never shows a reader a partial state, nor data older than its -pos, while transactions replicate', async () => {
      const cluster = await startCluster(5);
      const { app, standIn } = cluster;
      const accounts = 300;
      await app['node-a'].call('exec', {
        sql: `CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL, padding BLOB);
          CREATE TABLE meta (version INTEGER NOT NULL); INSERT INTO meta VALUES (0);
          WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${accounts})
          INSERT INTO accounts SELECT i, 1000, randomblob(1500) FROM n;`,
      });
      await standIn.waitForReplication();
      const baseTxID = standIn.position('node-b').txID;

      const [, reads] = await Promise.all([
        app['node-a'].call('transfers', { count: 400, accounts }),
        app['node-b'].call<Record<string, number>>('sumLoop', {
          durationMs: 2000,
          expectedSum: accounts * 1000,
          baseTxID,
        }),
      ]);

      expect(reads).toMatchObject({ violations: 0, behindPos: 0, errorCount: 0 });
      expect(reads.versions).toBeGreaterThan(2);
      await standIn.waitForReplication();
      expect(
        await app['node-c'].call('all', {
          sql: 'SELECT sum(balance) AS total, (SELECT version FROM meta) AS version FROM accounts',
        }),
      ).toEqual([{ total: accounts * 1000, version: 400 }]);
    });
  });

  describe('files and event streams', () => {
    it('has .primary with the primary hostname on replicas only, and starts every stream with init', async () => {
      const cluster = await startCluster(5);
      expect(primaryFile(cluster, 'node-a')).toBeUndefined();
      expect(primaryFile(cluster, 'node-b')).toBe('node-a\n');
      expect(primaryFile(cluster, 'node-c')).toBe('node-a\n');
      expect(cluster.events['node-a'].events[0]).toEqual({
        type: 'init',
        data: { isPrimary: true, hostname: 'node-a' },
      });
      expect(cluster.events['node-b'].events[0]).toEqual({
        type: 'init',
        data: { isPrimary: false, hostname: 'node-a' },
      });

      const url = cluster.standIn.node('node-a').eventsUrl;
      expect((await fetch(url.replace('/events', '/other'))).status).toBe(404);
      expect((await fetch(url, { method: 'POST' })).status).toBe(404);
    });

    it('disconnect removes .primary, sends hostname "" and stops replication to the node until reconnect', async () => {
      const cluster = await startCluster(5);
      const { standIn, events } = cluster;
      await standIn.disconnect('node-c');
      expect(primaryFile(cluster, 'node-c')).toBeUndefined();
      await events['node-c'].until((all) => all.some((event) => event.type === 'primaryChange'));
      expect(events['node-c'].ofType('primaryChange')).toEqual([
        { type: 'primaryChange', data: { isPrimary: false, hostname: '' } },
      ]);
      const late = await EventRecorder.connect(standIn.node('node-c').eventsUrl);
      cleanups.push(() => late.close());
      expect(late.events[0]).toEqual({ type: 'init', data: { isPrimary: false, hostname: '' } });

      await createItems(cluster);
      await standIn.waitForReplication();
      expect(standIn.position('node-b').txID).toBe(2);
      expect(standIn.position('node-c').txID).toBe(1);

      await standIn.reconnect('node-c');
      expect(primaryFile(cluster, 'node-c')).toBe('node-a\n');
      await standIn.waitForReplication();
      expect(standIn.position('node-c').txID).toBe(2);
      expect(events['node-c'].ofType('primaryChange').map((event) => event.data.hostname)).toEqual(['', 'node-a']);
    });
  });

  describe('promote', () => {
    it('with catch-up moves the files, the events and the refusals, and TXIDs go on increasing', async () => {
      const cluster = await startCluster(60_000);
      const { standIn, events } = cluster;
      await createItems(cluster);
      await insert(cluster, 'node-a', 'one');
      await insert(cluster, 'node-a', 'two');

      await standIn.promote('node-b');
      expect(standIn.primary).toBe('node-b');
      expect(standIn.position('node-b').txID).toBe(4);
      expect(await names(cluster, 'node-b')).toEqual(['one', 'two']);
      expect(primaryFile(cluster, 'node-b')).toBeUndefined();
      expect(primaryFile(cluster, 'node-a')).toBe('node-b\n');
      expect(primaryFile(cluster, 'node-c')).toBe('node-b\n');
      for (const name of NODES) {
        await events[name].until((all) => all.some((event) => event.type === 'primaryChange'));
        const isPrimary = name === 'node-b';
        expect(events[name].ofType('primaryChange')).toEqual([
          { type: 'primaryChange', data: { isPrimary, hostname: 'node-b' } },
        ]);
      }

      await expect(insert(cluster, 'node-a', 'refused')).rejects.toMatchObject({ code: 'SQLITE_IOERR' });
      expect(txIDOf((await insert(cluster, 'node-b', 'three')).pos)).toBe(5);
      standIn.setDelay(5);
      await standIn.waitForReplication();
      for (const name of NODES) expect(await names(cluster, name)).toEqual(['one', 'two', 'three']);
      await events['node-c'].until(() => txEvents(cluster, 'node-c').includes(5));
      expect(txEvents(cluster, 'node-c')).toEqual([2, 3, 4, 5]);
    });

    it('fails the COMMIT of a transaction the old primary had open, and keeps nothing of it', async () => {
      const cluster = await startCluster(5);
      const { app, standIn } = cluster;
      await createItems(cluster);
      await standIn.waitForReplication();
      await app['node-a'].call('run', { sql: 'BEGIN IMMEDIATE' });
      await insert(cluster, 'node-a', 'in flight');

      const promoted = standIn.promote('node-b');
      const role = join(standIn.node('node-a').mountDir, ROLE_FILE);
      while (readFileSync(role, 'utf8') !== 'replica\n') await new Promise((resolve) => setTimeout(resolve, 2));
      await expect(app['node-a'].call('run', { sql: 'COMMIT' })).rejects.toMatchObject({ code: 'SQLITE_IOERR' });
      await promoted;

      expect(standIn.position('node-b').txID).toBe(2);
      await standIn.waitForReplication();
      for (const name of NODES) expect(await names(cluster, name)).toEqual([]);
    });

    it('without catch-up loses the transactions the new primary lacked, on every node', async () => {
      const cluster = await startCluster(5);
      const { standIn } = cluster;
      await createItems(cluster);
      await standIn.waitForReplication();
      standIn.setDelay(60_000);
      const lost = await insert(cluster, 'node-a', 'lost');
      expect(txIDOf(lost.pos)).toBe(3);

      await standIn.promote('node-b', { catchUp: false });
      standIn.setDelay(5);
      await standIn.waitForReplication();
      for (const name of NODES) {
        expect(await names(cluster, name)).toEqual([]);
        expect(standIn.position(name).txID).toBe(2);
      }
      const kept = await insert(cluster, 'node-b', 'kept');
      expect(txIDOf(kept.pos)).toBe(3);
      expect(kept.pos).not.toBe(lost.pos);
      await standIn.waitForReplication();
      for (const name of NODES) expect(await names(cluster, name)).toEqual(['kept']);
    });
  });
});
