import { spawn } from 'node:child_process';
import { Agent, get as httpGet, request as httpRequest } from 'node:http';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { buildDemo, DemoProcess, startDemo } from './fixtures/demo-process';
import { tempDir } from './fixtures/temp-sqlite';

/** RELIABILITY_HEAVY=1 runs the heavier variants (more crash cycles). */
const HEAVY = Boolean(process.env.RELIABILITY_HEAVY);
const CRASH_CYCLES = HEAVY ? 50 : 10;

// One file for every test that runs compiled code in child processes: `nest build` runs once, and
// never concurrently with itself in another Jest worker.
beforeAll(() => buildDemo(), 120_000);

/** A fresh temp dir per test, and the demo started in it killed after the test if still running. */
function useTempDirAndDemo() {
  const handle: { tmp: ReturnType<typeof tempDir>; demo: DemoProcess | undefined } = {
    tmp: undefined as never,
    demo: undefined,
  };
  beforeEach(() => (handle.tmp = tempDir()));
  afterEach(() => {
    if (handle.demo?.child.exitCode === null) handle.demo.child.kill('SIGKILL');
    handle.tmp.cleanup();
  });
  return handle;
}

/** The demo as users run it: a real process, real HTTP, SIGTERM. */
describe('ledger demo process', () => {
  const t = useTempDirAndDemo();

  it('on SIGTERM answers every in-flight request, commits exactly the acknowledged transfers and exits', async () => {
    const databasePath = t.tmp.file('ledger.db');
    const demo = (t.demo = await startDemo({ DATABASE_PATH: databasePath, WRITE_QUEUE_SIZE: '4096' }));
    const post = (path: string, body: unknown) =>
      fetch(demo.url + path, {
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

/** Reads what a verifier needs from the ledger file, after SQLite's own recovery on open. */
function inspectLedger(databasePath: string) {
  const db = new Database(databasePath); // read-write: recovers a WAL left by a killed process
  try {
    const ids = new Set((db.prepare('SELECT id FROM transfers').all() as Array<{ id: number }>).map((r) => r.id));
    const { total } = db.prepare('SELECT COALESCE(SUM(balance), 0) AS total FROM accounts').get() as { total: number };
    const { integrity_check } = db.prepare('PRAGMA integrity_check').get() as { integrity_check: string };
    return { ids, total, integrity: integrity_check };
  } finally {
    db.close();
  }
}

describe('crash durability (SIGKILL at random moments, synchronous=FULL)', () => {
  const t = useTempDirAndDemo();

  it(`keeps every acknowledged transfer and a conserved balance over ${CRASH_CYCLES} kill/restart cycles`, async () => {
    const databasePath = t.tmp.file('ledger.db');
    const env = { DATABASE_PATH: databasePath, WRITE_QUEUE_SIZE: '4096' };
    let demo = (t.demo = await startDemo(env));
    const post = (url: string, path: string, body: unknown) =>
      fetch(url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    for (const name of ['a', 'b', 'c', 'd']) {
      expect((await post(demo.url, '/accounts', { name, initialBalance: 100_000 })).status).toBe(201);
    }
    const acknowledged = new Set<number>();
    let attempted = 0;
    for (let cycle = 0; cycle < CRASH_CYCLES; cycle++) {
      if (cycle > 0) demo = t.demo = await startDemo(env);
      const { url } = demo;
      let killed = false;
      // 16 clients sending transfers back to back until the process dies under them.
      const clients = Array.from({ length: 16 }, async (_, client) => {
        for (let i = 0; !killed; i++) {
          attempted++;
          const from = 1 + ((client + i) % 4);
          const res = await post(url, '/transfers', { fromId: from, toId: 1 + (from % 4), amount: 1 + (i % 9) }).catch(
            () => undefined,
          );
          if (res?.status === 201) acknowledged.add(((await res.json()) as { id: number }).id);
          else if (res === undefined) return; // the process is gone
        }
      });
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 250));
      demo.child.kill('SIGKILL');
      killed = true;
      await demo.exited;
      await Promise.all(clients);

      const ledger = inspectLedger(databasePath);
      const missing = [...acknowledged].filter((id) => !ledger.ids.has(id));
      expect(missing).toEqual([]); // every acknowledged write survived the crash
      expect(ledger.total).toBe(400_000); // no transfer half-applied
      expect(ledger.integrity).toBe('ok');
    }
    expect(acknowledged.size).toBeGreaterThan(CRASH_CYCLES); // the kills did land among writes
    console.info(
      `crash durability: ${CRASH_CYCLES} SIGKILL cycles survived, ${acknowledged.size} acknowledged transfers ` +
        `verified present (${attempted} attempted), balance conserved, integrity_check ok`,
    );
  }, 180_000);
});

interface ShutdownReport {
  queuedAtSigterm: number;
  counts: Record<string, number>;
  outcomes: string[];
  duringDrain: string;
}

/** Starts the shutdown worker with `jobs` queued jobs, sends SIGTERM once they are queued, returns its report. */
async function shutdownUnderLoad(databasePath: string, jobs: number, jobMs: number, graceMs: number) {
  const worker = join(__dirname, 'fixtures', 'workers', 'shutdown-worker.mjs');
  const child = spawn(process.execPath, [worker, databasePath, String(jobs), String(jobMs), String(graceMs)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit').then(() => performance.now());
  const lines = createInterface({ input: child.stdout! });
  let report: ShutdownReport | undefined;
  let signalledAt = 0;
  for await (const line of lines) {
    if (line.startsWith('queued ')) {
      signalledAt = performance.now();
      child.kill('SIGTERM');
    } else if (line.startsWith('{')) {
      report = JSON.parse(line) as ShutdownReport;
    }
  }
  const exitMs = (await exited) - signalledAt;
  const db = new Database(databasePath, { readonly: true });
  try {
    const rows = db.prepare('SELECT id, during FROM rows ORDER BY id').all() as Array<{ id: number; during: number }>;
    return { report: report!, exitMs, rows };
  } finally {
    db.close();
  }
}

describe('graceful shutdown of a service with ~1,000 queued jobs (SIGTERM)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());

  it('drain mode: every queued job completes before exit; a job submitted during the drain gets DRAINING', async () => {
    const { report, exitMs, rows } = await shutdownUnderLoad(tmp.file('drain.db'), 1_000, 1, 10_000);
    expect(report.queuedAtSigterm).toBeGreaterThan(500); // SIGTERM found most of the 1,000 still queued
    expect(report.counts).toEqual({ ok: 1_000 }); // nothing left pending, nothing refused
    expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 1_000 }, (_, i) => i));
    expect(report.duringDrain).toBe('DRAINING');
    expect(exitMs).toBeLessThan(10_000 + 1_000);
    console.info(
      `graceful shutdown: ${report.queuedAtSigterm} jobs queued at SIGTERM, all 1000 committed during the drain, ` +
        `exit after ${Math.round(exitMs)} ms`,
    );
  }, 60_000);

  it('grace period too short: the rest is rejected with SHUTDOWN and never runs; exit within grace + 1 s', async () => {
    const graceMs = 200;
    const { report, exitMs, rows } = await shutdownUnderLoad(tmp.file('grace.db'), 1_000, 5, graceMs);
    expect(report.queuedAtSigterm).toBeGreaterThan(900);
    expect(report.counts.pending).toBeUndefined(); // every promise settled
    expect(Object.keys(report.counts).sort()).toEqual(['SHUTDOWN', 'ok']);
    expect(report.counts.SHUTDOWN).toBeGreaterThan(500);
    // Exactly the jobs that resolved wrote their row; every SHUTDOWN job never ran.
    const ok = report.outcomes.flatMap((outcome, id) => (outcome === 'ok' ? [id] : []));
    expect(rows.filter((r) => r.during === 0).map((r) => r.id)).toEqual(ok);
    expect(['DRAINING', 'SHUTDOWN']).toContain(report.duringDrain);
    expect(rows.some((r) => r.during === 1)).toBe(false);
    expect(exitMs).toBeLessThan(graceMs + 1_000);
    console.info(
      `graceful shutdown: ${report.counts.ok} of 1000 queued jobs committed within ${graceMs} ms of grace, ` +
        `${report.counts.SHUTDOWN} rejected with SHUTDOWN and never run, exit after ${Math.round(exitMs)} ms`,
    );
  }, 60_000);
});

/** One POST on a keep-alive agent; resolves with the status and body, or the network error's code. */
function postKeepAlive(agent: Agent, url: string, path: string, body: unknown) {
  return new Promise<{ status: number | string; body?: { id?: number } }>((resolve) => {
    const payload = JSON.stringify(body);
    const req = httpRequest(
      url + path,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      },
      (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode!, body: text ? (JSON.parse(text) as { id?: number }) : undefined }),
        );
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ status: error.code ?? 'error' }));
    req.end(payload);
  });
}

/** A GET on a new connection, as a load balancer's health check does; the status or the error code. */
function probeFresh(url: string) {
  return new Promise<number | string>((resolve) => {
    const req = httpGet(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

describe('SIGTERM under keep-alive load (readiness delay, drain, connections closed, exit)', () => {
  const t = useTempDirAndDemo();

  it('turns /health 503 while still serving, then stops accepting, drains, closes keep-alive connections and exits within the grace', async () => {
    const readinessDelayMs = 600;
    const graceMs = 2_000;
    const databasePath = t.tmp.file('ledger.db');
    const demo = (t.demo = await startDemo({
      DATABASE_PATH: databasePath,
      WRITE_QUEUE_SIZE: '4096',
      READINESS_DELAY_MS: String(readinessDelayMs),
      SHUTDOWN_GRACE_MS: String(graceMs),
    }));
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    for (const name of ['a', 'b', 'c', 'd']) {
      expect((await postKeepAlive(agent, demo.url, '/accounts', { name, initialBalance: 100_000 })).status).toBe(201);
    }

    let exited = false;
    let signalledAt = 0;
    const answers: Array<{ at: number; status: number | string; id?: number }> = [];
    // 16 clients sending transfers back to back on keep-alive connections until the process is gone.
    const clients = Array.from({ length: 16 }, async (_, client) => {
      for (let i = 0; !exited; i++) {
        const from = 1 + ((client + i) % 4);
        const res = await postKeepAlive(agent, demo.url, '/transfers', {
          fromId: from,
          toId: 1 + (from % 4),
          amount: 1,
        });
        answers.push({ at: Date.now(), status: res.status, id: res.status === 201 ? res.body?.id : undefined });
        if (typeof res.status === 'string') await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    const health: Array<{ at: number; status: number | string }> = [];
    const poller = (async () => {
      while (!exited) {
        health.push({ at: Date.now(), status: await probeFresh(`${demo.url}/health`) });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();

    // Load for 300 ms, and until a health check has answered 200 under it.
    const loadedSince = Date.now();
    while (Date.now() - loadedSince < 300 || !health.some((h) => h.status === 200)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    signalledAt = Date.now();
    demo.child.kill('SIGTERM');
    const bound = readinessDelayMs + graceMs + 1_000;
    let giveUp: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      demo.exited,
      new Promise<undefined>((resolve) => (giveUp = setTimeout(() => resolve(undefined), bound + 5_000))),
    ]);
    clearTimeout(giveUp);
    exited = true;
    await Promise.all([...clients, poller]);
    agent.destroy();

    // The process exits, within readinessDelayMs + shutdownGraceMs + 1 s of SIGTERM.
    expect(exit).toBeDefined();
    expect(exit!.signal === 'SIGTERM' || exit!.code === 0).toBe(true);
    expect(exit!.at - signalledAt).toBeLessThan(bound);

    // Readiness turns 503 first, on connections still accepted; refusals come only after it.
    const afterSignal = health.filter((h) => h.at >= signalledAt);
    const first503 = afterSignal.findIndex((h) => h.status === 503);
    const firstRefused = afterSignal.findIndex((h) => h.status === 'ECONNREFUSED');
    expect(first503).toBeGreaterThanOrEqual(0);
    if (firstRefused >= 0) expect(first503).toBeLessThan(firstRefused);
    // Writes are still served, and acknowledged, while readiness reports 503.
    const servedWhileNotReady = answers.filter((a) => a.at > afterSignal[first503].at && a.status === 201);
    expect(servedWhileNotReady.length).toBeGreaterThan(0);
    // Only created, refused (503 while draining) or network errors once the server closes.
    expect(answers.filter((a) => typeof a.status === 'number' && a.status !== 201 && a.status !== 503)).toEqual([]);

    const acknowledged = answers.flatMap((a) => (a.id === undefined ? [] : [a.id]));
    const ledger = inspectLedger(databasePath);
    expect(acknowledged.filter((id) => !ledger.ids.has(id))).toEqual([]); // every 201 is committed
    expect(ledger.ids.size).toBe(acknowledged.length); // and nothing else
    expect(ledger.total).toBe(400_000);
    expect(ledger.integrity).toBe('ok');
    const count = (list: Array<{ status: number | string }>) =>
      Object.entries(list.reduce<Record<string, number>>((m, a) => ({ ...m, [a.status]: (m[a.status] ?? 0) + 1 }), {}))
        .map(([status, n]) => `${status}: ${n}`)
        .join(', ');
    console.info(
      `SIGTERM under keep-alive load: /health 503 ${afterSignal[first503].at - signalledAt} ms after SIGTERM, ` +
        `exit after ${exit!.at - signalledAt} ms (readinessDelayMs ${readinessDelayMs}, shutdownGraceMs ${graceMs}); ` +
        `transfers after SIGTERM: ${count(answers.filter((a) => a.at >= signalledAt))}; ` +
        `/health after SIGTERM: ${count(afterSignal)}; ${acknowledged.length} acknowledged = ${ledger.ids.size} committed`,
    );
  }, 60_000);
});
