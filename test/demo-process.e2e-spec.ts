import Database from 'better-sqlite3';
import { buildDemo, DemoProcess, startDemo } from './fixtures/demo-process';
import { tempDir } from './fixtures/temp-sqlite';

/** The demo as users run it: a real process, real HTTP, SIGTERM. */
describe('ledger demo process', () => {
  let tmp: ReturnType<typeof tempDir>;
  let demo: DemoProcess | undefined;
  beforeAll(() => buildDemo(), 120_000);
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => {
    if (demo?.child.exitCode === null) demo.child.kill('SIGKILL');
    tmp.cleanup();
  });

  it('on SIGTERM answers every in-flight request, commits exactly the acknowledged transfers and exits', async () => {
    const databasePath = tmp.file('ledger.db');
    demo = await startDemo({ DATABASE_PATH: databasePath, WRITE_QUEUE_SIZE: '4096' });
    const post = (path: string, body: unknown) =>
      fetch(demo!.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const name of ['a', 'b', 'c', 'd']) {
      expect((await post('/accounts', { name, initialBalance: 100_000 })).status).toBe(201);
    }

    const inFlight = Array.from({ length: 400 }, (_, i) =>
      post('/transfers', { fromId: 1 + (i % 4), toId: 1 + ((i + 1) % 4), amount: 1 + (i % 7) }).then(
        (r) => r.status,
        () => 0, // connection refused once the server closed: the request never reached the app
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    const signalledAt = Date.now();
    demo.child.kill('SIGTERM');
    const statuses = await Promise.all(inFlight);
    const exit = await demo.exited;

    expect(exit.signal === 'SIGTERM' || exit.code === 0).toBe(true);
    expect(exit.at - signalledAt).toBeLessThan(10_000 + 1_000); // grace period + 1 s
    const unexpected = statuses.filter((s) => ![201, 503, 0].includes(s));
    expect(unexpected).toEqual([]);

    const db = new Database(databasePath, { readonly: true });
    try {
      const { total } = db.prepare('SELECT SUM(balance) AS total FROM accounts').get() as { total: number };
      const { transfers } = db.prepare('SELECT COUNT(*) AS transfers FROM transfers').get() as { transfers: number };
      expect(total).toBe(400_000);
      expect(transfers).toBe(statuses.filter((s) => s === 201).length);
      expect(transfers).toBeGreaterThan(0);
      expect((db.prepare('PRAGMA integrity_check').get() as { integrity_check: string }).integrity_check).toBe('ok');
    } finally {
      db.close();
    }
  }, 60_000);
});
