#!/usr/bin/env node
// Measures the SIGTERM sequence of the ledger demo under autocannon: it starts the built demo on a
// fresh database, loads it with keep-alive connections sending transfers, sends SIGTERM, keeps the
// load and a /health poller (a new connection per check) going until the process exits, then
// inspects the database. A health check is placed before or after SIGTERM by when it was sent,
// except that 'under load before SIGTERM' counts those answered before it. Prints the time to the first /health 503, to the first refused
// connection and to exit, the answers by status and phase, and the database checks.
// Usage: npm run sigterm:load -- [--connections 64] [--warmup-ms 3000] [--readiness-delay-ms 5000]
//        [--grace-ms 10000] [--give-up-ms 30000]      (npm run sigterm:load builds the demo first)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '64' },
    'warmup-ms': { type: 'string', default: '3000' },
    'readiness-delay-ms': { type: 'string', default: '5000' },
    'grace-ms': { type: 'string', default: '10000' },
    'give-up-ms': { type: 'string', default: '30000' },
    accounts: { type: 'string', default: '20' },
  },
});
const int = (name) => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`--${name} must be a non-negative integer (received '${values[name]}')`);
    process.exit(2);
  }
  return value;
};
const connections = int('connections');
const warmupMs = int('warmup-ms');
const readinessDelayMs = int('readiness-delay-ms');
const graceMs = int('grace-ms');
const giveUpMs = int('give-up-ms');
const accountCount = Math.max(2, int('accounts'));
const initialBalance = 100_000;

const root = join(import.meta.dirname, '..');
const dir = mkdtempSync(join(tmpdir(), 'sigterm-load-'));
const databasePath = join(dir, 'ledger.db');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function freePort() {
  const server = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** GET on a fresh connection (no keep-alive), as a load balancer's health check does. */
function probe(url) {
  return new Promise((resolve) => {
    const req = get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => {
        let status;
        try {
          status = JSON.parse(body).status;
        } catch {
          status = undefined;
        }
        resolve(status ? `${res.statusCode} ${status}` : String(res.statusCode));
      });
    });
    req.on('error', (error) => resolve(error.code ?? 'error'));
    req.setTimeout(5_000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
  });
}

async function main() {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(root, process.env.DEMO_DIST ?? 'dist', 'src', 'main.js')], {
    cwd: root,
    env: {
      ...process.env,
      PORT: String(port),
      DATABASE_PATH: databasePath,
      WRITE_QUEUE_SIZE: '4096',
      READINESS_DELAY_MS: String(readinessDelayMs),
      SHUTDOWN_GRACE_MS: String(graceMs),
      NO_COLOR: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  const collect = (chunk) => log.push(...chunk.toString().split('\n').filter(Boolean));
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: Date.now() })),
  );

  for (let i = 0; ; i++) {
    if ((await probe(`${url}/health`)).startsWith('200')) break;
    if (i > 200 || child.exitCode !== null) throw new Error(`the demo did not start:\n${log.join('\n')}`);
    await sleep(100);
  }
  for (let i = 0; i < accountCount; i++) {
    const res = await fetch(`${url}/accounts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: `acct-${i}`, initialBalance }),
    });
    if (res.status !== 201) throw new Error(`opening an account failed: ${res.status}`);
  }

  let sigtermAt = 0;

  const phaseOf = (at) => (!sigtermAt || at < sigtermAt ? 'before' : 'after');
  const answers = { before: new Map(), after: new Map() };
  const count = (phase, key) => answers[phase].set(key, (answers[phase].get(key) ?? 0) + 1);
  const acknowledged = new Set();
  let n = 0;
  const cannon = autocannon({
    url,
    connections,
    duration: 3_600,
    timeout: 20,
    requests: [
      {
        method: 'POST',
        path: '/transfers',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          n++;
          const fromId = 1 + (n % accountCount);
          const toId = 1 + ((n + 1 + (n % (accountCount - 1))) % accountCount);
          return {
            ...req,
            body: JSON.stringify({ fromId, toId: toId === fromId ? 1 + (fromId % accountCount) : toId, amount: 1 }),
          };
        },
        onResponse: (status, body) => {
          count(phaseOf(Date.now()), String(status));
          if (status === 201) acknowledged.add(JSON.parse(body).id);
        },
      },
    ],
  });
  cannon.on('reqError', (error) => count(phaseOf(Date.now()), error.code ?? error.message));
  const cannonDone = new Promise((resolve) => cannon.on('done', resolve));

  // A health check on a new connection every 100 ms, each on its own (a slow answer delays no other).
  const health = [];
  const probes = [];
  const poller = setInterval(() => {
    const at = Date.now();
    probes.push(probe(`${url}/health`).then((outcome) => health.push({ at, answeredAt: Date.now(), outcome })));
  }, 100);

  await sleep(warmupMs);
  sigtermAt = Date.now();
  child.kill('SIGTERM');
  const exit = await Promise.race([exited, sleep(giveUpMs).then(() => undefined)]);
  if (!exit) child.kill('SIGKILL');
  const exitAt = exit?.at ?? 0;
  const finalExit = exit ?? (await exited);
  clearInterval(poller);
  cannon.stop();
  await Promise.all([cannonDone, ...probes]);

  const since = (at) => (at ? `${at - sigtermAt} ms` : 'never');
  const afterSigterm = health.filter((h) => h.at >= sigtermAt).sort((a, b) => a.at - b.at);
  const first503 = afterSigterm.find((h) => h.outcome.startsWith('503'));
  const firstRefused = afterSigterm.find((h) => h.outcome === 'ECONNREFUSED');
  const last200 = [...afterSigterm].reverse().find((h) => h.outcome.startsWith('200'));
  const tally = (list) => format(list.reduce((m, h) => m.set(h.outcome, (m.get(h.outcome) ?? 0) + 1), new Map()));

  const db = new Database(databasePath, { readonly: true });
  const ids = new Set(
    db
      .prepare('SELECT id FROM transfers')
      .all()
      .map((r) => r.id),
  );
  const { total } = db.prepare('SELECT SUM(balance) AS total FROM accounts').get();
  const { integrity_check } = db.prepare('PRAGMA integrity_check').get();
  db.close();
  const missing = [...acknowledged].filter((id) => !ids.has(id));
  const format = (map) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .map(([key, value]) => `${key}: ${value}`)
      .join(', ') || 'none';
  const phases = log
    .filter((line) => /WriteCoordinator/.test(line))
    .map((line) => line.replace(/^.*?(\S+\s+\[Write)/, '$1'));

  console.log(
    `SIGTERM under load: ${connections} keep-alive connections (autocannon) sending POST /transfers, ` +
      `warm-up ${warmupMs} ms, readinessDelayMs ${readinessDelayMs}, shutdownGraceMs ${graceMs}`,
  );
  console.log(
    `/health (new connection every ~100 ms): last 200 ${since(last200?.at)}, first 503 ${since(first503?.at)}, ` +
      `first refused connection ${since(firstRefused?.at)} after SIGTERM`,
  );
  const beforeSigterm = health.filter((h) => h.answeredAt < sigtermAt);
  const latencies = beforeSigterm.map((h) => h.answeredAt - h.at).sort((a, b) => a - b);
  const pct = (q) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)] ?? 0;
  console.log(
    `/health answered under load before SIGTERM: ${tally(beforeSigterm)} (answer time p50 ${pct(0.5)} ms, ` +
      `max ${pct(1)} ms)`,
  );
  console.log(`/health after SIGTERM: ${tally(afterSigterm)}`);
  console.log(
    exit
      ? `exit: ${since(exitAt)} after SIGTERM (code ${finalExit.code}, signal ${finalExit.signal})`
      : `exit: had not exited ${giveUpMs} ms after SIGTERM; killed with SIGKILL`,
  );
  console.log(`transfers answered before SIGTERM: ${format(answers.before)}`);
  console.log(`transfers answered after SIGTERM:  ${format(answers.after)}`);
  console.log(
    `database: integrity_check ${integrity_check}; total balance ${total} (expected ${accountCount * initialBalance}, ` +
      `${total === accountCount * initialBalance ? 'conserved' : 'NOT conserved'}); ${ids.size} transfers committed, ` +
      `${acknowledged.size} acknowledged (201), ${missing.length} acknowledged but missing`,
  );
  console.log('shutdown log of the demo:');
  for (const line of phases) console.log(`  ${line}`);
  rmSync(dir, { recursive: true, force: true });
  const ok = exit && integrity_check === 'ok' && missing.length === 0 && total === accountCount * initialBalance;
  process.exit(ok ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});
