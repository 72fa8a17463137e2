#!/usr/bin/env node
// Group commit as an app sees it: the demo's real HTTP stack (`node dist/src/main.js`, a child
// process per run, fresh database file, its own port) driven by autocannon with keep-alive
// connections, write requests only (POST /transfers between seeded accounts). Contenders: group
// commit (the default) and group commit off (WRITE_MAX_BATCH_SIZE=1), plus one per `batchYield`
// mode given with --yield-modes. After each run: money is conserved and the transfers recorded
// equal the 2xx responses (plus at most the requests still in flight when autocannon stopped).
// With --workers N (N > 1) the contenders are instead the demo as N node:cluster workers on one file
// (WORKERS=N): (a) every worker with its own coordinator, meeting the others at SQLite's lock
// (WRITE_CLUSTER=0), and (b) the workers forwarding their writes to the elected primary (issue 12);
// 64 connections by default, the non-2xx answers counted by error code (BUSY among them), the mean
// batch and the CPU per request read from every worker (primary and secondaries apart).
// Not a test: it prints figures; it exits 1 only when a run failed or a consistency check did.
// Usage: npm run bench:http [-- --quick] [--duration 10] [--connections 1,64] [--sync FULL,NORMAL]
//        [--yield-modes auto,never,always] [--rounds N] [--warmup 1] [--json <file>]
//        npm run bench:http -- --workers 4 [--rounds 3] [--duration 10] [--connections 64]
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { processCpuMicros, startDemoServer } from './demo-server.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    workers: { type: 'string', default: '1' },
    sync: { type: 'string', default: 'FULL' },
    'yield-modes': { type: 'string' },
    rounds: { type: 'string', default: '1' },
    accounts: { type: 'string', default: '20' },
    json: { type: 'string' },
  },
});

function fail(message) {
  console.error(message);
  process.exit(2);
}
const list = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
const positiveNumber = (name, raw) => {
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a number greater than 0 (received '${raw}')`);
  return value;
};
const positiveInteger = (name, raw) => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) fail(`--${name} must be an integer, 1 or more (received '${raw}')`);
  return value;
};

const DURATION_S = positiveNumber('duration', args.duration ?? (args.quick ? '3' : '10'));
const WARMUP_S = args.warmup === '0' ? 0 : positiveNumber('warmup', args.warmup ?? (args.quick ? '0.5' : '1'));
const WORKERS = positiveInteger('workers', args.workers);
const CONNECTIONS = list(args.connections ?? (WORKERS > 1 ? '64' : '1,64')).map((c) =>
  positiveInteger('connections', c),
);
const SYNCS = list(args.sync).map((s) =>
  ['OFF', 'NORMAL', 'FULL', 'EXTRA'].includes(s)
    ? s
    : fail(`--sync takes OFF, NORMAL, FULL or EXTRA (received '${s}')`),
);
const YIELD_MODES = list(args['yield-modes'] ?? '').map((m) =>
  ['auto', 'always', 'never'].includes(m) ? m : fail(`--yield-modes takes auto, always or never (received '${m}')`),
);
const ROUNDS = positiveInteger('rounds', args.rounds);
const ACCOUNTS = Math.max(2, positiveInteger('accounts', args.accounts));
/** The DTO's largest opening balance: no transfer of at most 100 can overdraw it in one run. */
const INITIAL_BALANCE = 1_000_000_000;

/** Each contender is the demo started with these extra environment settings. */
const CONTENDERS =
  WORKERS > 1
    ? [
        { name: `(a) ${WORKERS} workers, own coordinators`, env: { WORKERS: String(WORKERS), WRITE_CLUSTER: '0' } },
        { name: `(b) ${WORKERS} workers, forwarding`, env: { WORKERS: String(WORKERS), WRITE_CLUSTER: '1' } },
      ]
    : [
        { name: 'group commit (default)', env: {} },
        { name: 'group commit off (maxBatchSize 1)', env: { WRITE_MAX_BATCH_SIZE: '1' } },
        ...YIELD_MODES.map((mode) => ({
          name: `group commit, batchYield '${mode}'`,
          env: { WRITE_BATCH_YIELD: mode },
        })),
      ];

/** A GET on a new connection: node:cluster hands each new connection to the next free worker. */
function getFresh(url, path) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () =>
        res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`${path}: ${res.statusCode}`)),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** `/metrics` of each of the WORKERS workers, by pid (new connections until every worker has answered). */
async function workersMetrics(url) {
  const byPid = new Map();
  for (let probe = 0; byPid.size < WORKERS; probe++) {
    if (probe === 40 * WORKERS) throw new Error(`only ${byPid.size} of ${WORKERS} workers answered /metrics`);
    const m = await getFresh(url, '/metrics');
    byPid.set(m.pid, m);
  }
  return byPid;
}

/**
 * With several workers: waits until the number of transfers in the file held still for 500 ms (the
 * requests cut off at autocannon's stop have landed), then reads every worker's metrics.
 */
async function settledWorkers(url) {
  let last = (await call(url, 'GET', '/totals')).transfers;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const now = (await call(url, 'GET', '/totals')).transfers;
    if (now === last) return workersMetrics(url);
    last = now;
  }
}

/** Sum of `pick(metrics)` over the workers of `after`, less the same in `before`. */
const deltaOver = (before, after, pick) =>
  [...after].reduce((sum, [pid, m]) => sum + pick(m) - (before.has(pid) ? pick(before.get(pid)) : 0), 0);

async function call(url, method, path, body) {
  const res = await fetch(url + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return JSON.parse(text);
}

/** Opens the accounts through the HTTP API (each one a coordinator job). */
async function seed(url) {
  const ids = [];
  for (let i = 0; i < ACCOUNTS; i++) {
    ids.push((await call(url, 'POST', '/accounts', { name: `bench-${i}`, initialBalance: INITIAL_BALANCE })).id);
  }
  return ids;
}

/**
 * Waits until the demo has finished every request it received: the coordinator has nothing queued
 * or running and its `accepted` counter held still for 300 ms. Requests cut off by autocannon's
 * stop are still in the server's socket buffers and reach the queue one by one, so one idle
 * snapshot is not enough.
 */
async function settled(url) {
  let last = await call(url, 'GET', '/metrics');
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const m = await call(url, 'GET', '/metrics');
    if (m.queueDepth === 0 && m.running === 0 && m.accepted === last.accepted) return m;
    last = m;
  }
}

/**
 * autocannon on POST /transfers for `seconds` with `connections` keep-alive connections; each
 * request moves 1–100 cents between two random distinct accounts. Latencies are taken from each
 * response (float ms; autocannon's own histogram keeps whole ms).
 */
async function drive(url, ids, connections, seconds) {
  const latencies = [];
  const codes = {};
  const instance = autocannon({
    url,
    connections,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/transfers',
        headers: { 'content-type': 'application/json' },
        setupRequest(request) {
          const from = Math.floor(Math.random() * ids.length);
          const to = (from + 1 + Math.floor(Math.random() * (ids.length - 1))) % ids.length;
          const amount = 1 + Math.floor(Math.random() * 100);
          return { ...request, body: JSON.stringify({ fromId: ids[from], toId: ids[to], amount }) };
        },
        // The error code of each non-2xx answer (BUSY, QUEUE_FULL, TIMEOUT, …).
        onResponse(status, body) {
          if (status < 300) return;
          let code = `HTTP ${status}`;
          try {
            code = JSON.parse(body).code ?? code;
          } catch {
            // not JSON
          }
          codes[code] = (codes[code] ?? 0) + 1;
        },
      },
    ],
  });
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  const result = await instance;
  latencies.sort((a, b) => a - b);
  return { result, latencies, codes };
}

const percentile = (sorted, p) =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** One run: a fresh demo, accounts seeded, a warm-up, the measured load, the checks. */
async function runOnce(contender, sync, connections) {
  const server = await startDemoServer({ WRITE_SYNCHRONOUS: sync, ...contender.env });
  try {
    const ids = await seed(server.url);
    if (WARMUP_S > 0) await drive(server.url, ids, connections, WARMUP_S);
    if (WORKERS > 1) return await measureWorkers(server, ids, connections);
    const metricsBefore = await settled(server.url);
    const totalsBefore = await call(server.url, 'GET', '/totals');
    const serverCpuBefore = server.cpuMicros();
    const clientCpuBefore = process.cpuUsage();
    const { result, latencies, codes } = await drive(server.url, ids, connections, DURATION_S);
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const metricsAfter = await settled(server.url);
    // Everything the server did for this load, the requests cut off at the stop included.
    const serverCpuAfter = server.cpuMicros();
    const jobs = metricsAfter.accepted - metricsBefore.accepted;
    const totalsAfter = await call(server.url, 'GET', '/totals');
    const batches = {
      committed: metricsAfter.batches.committed - metricsBefore.batches.committed,
      jobs: metricsAfter.batches.jobs - metricsBefore.batches.jobs,
    };
    const load = loadFigures(result, latencies, codes, totalsBefore, totalsAfter);
    const { answered } = load;
    return {
      ...load,
      meanBatch: batches.committed === 0 ? undefined : batches.jobs / batches.committed,
      batches,
      largestBatch: metricsAfter.batches.largest,
      peakQueueDepth: metricsAfter.peakQueueDepth,
      jobs,
      serverCpuUsPerRequest:
        serverCpuBefore === undefined || serverCpuAfter === undefined || jobs === 0
          ? undefined
          : (serverCpuAfter - serverCpuBefore) / jobs,
      clientCpuUsPerRequest: answered === 0 ? undefined : (clientCpu.user + clientCpu.system) / answered,
    };
  } catch (error) {
    error.message += `\n--- demo output ---\n${server.output().trim()}`;
    throw error;
  } finally {
    await server.stop();
  }
}

/** Per-process CPU time (µs) of the master and each worker pid. */
const cpuOf = (server, pids) => ({
  master: server.cpuMicros(),
  workers: new Map(pids.map((pid) => [pid, processCpuMicros(pid)])),
});

/**
 * What both kinds of run report about the load itself: throughput, latency, answers, and whether
 * the ledger agrees (money conserved; transfers recorded = 2xx, give or take the requests autocannon
 * stopped waiting for at the end, which may still commit on the server).
 */
function loadFigures(result, latencies, codes, totalsBefore, totalsAfter) {
  const answered = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
  const ok = result['2xx'];
  const recorded = totalsAfter.transfers - totalsBefore.transfers;
  const unanswered = Math.max(0, result.requests.sent - answered);
  return {
    seconds: result.duration,
    requestsPerSecond: answered / result.duration,
    okPerSecond: ok / result.duration,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    sent: result.requests.sent,
    answered,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
    errorCodes: codes,
    recorded,
    unanswered,
    conserved: totalsAfter.totalBalance === totalsBefore.totalBalance,
    recordedMatches: recorded >= ok && recorded - ok <= unanswered,
  };
}

/** The measured load of a --workers run: every worker's metrics and CPU before and after. */
async function measureWorkers(server, ids, connections) {
  const metricsBefore = await settledWorkers(server.url);
  const totalsBefore = await call(server.url, 'GET', '/totals');
  const pids = [...metricsBefore.keys()];
  const cpuBefore = cpuOf(server, pids);
  const clientCpuBefore = process.cpuUsage();
  const { result, latencies, codes } = await drive(server.url, ids, connections, DURATION_S);
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const metricsAfter = await settledWorkers(server.url);
  const cpuAfter = cpuOf(server, pids);
  const totalsAfter = await call(server.url, 'GET', '/totals');
  if (metricsAfter.size !== pids.length || !pids.every((pid) => metricsAfter.has(pid))) {
    throw new Error(`the workers changed during the run: ${pids} → ${[...metricsAfter.keys()]}`);
  }
  const load = loadFigures(result, latencies, codes, totalsBefore, totalsAfter);
  const { answered, recorded } = load;
  const committed = deltaOver(metricsBefore, metricsAfter, (m) => m.batches.committed);
  const batchedJobs = deltaOver(metricsBefore, metricsAfter, (m) => m.batches.jobs);
  const cpuDelta = (pid) => cpuAfter.workers.get(pid) - cpuBefore.workers.get(pid);
  const roleOf = (pid) => metricsAfter.get(pid).cluster?.role ?? 'own coordinator';
  const primary = pids.find((pid) => roleOf(pid) === 'primary');
  const secondaries = pids.filter((pid) => roleOf(pid) === 'secondary');
  const perRequest = (micros) => (recorded === 0 || Number.isNaN(micros) ? undefined : micros / recorded);
  return {
    ...load,
    busy: codes.BUSY ?? 0,
    meanBatch: committed === 0 ? undefined : batchedJobs / committed,
    batches: { committed, jobs: batchedJobs },
    forwarded: primary === undefined ? 0 : deltaOver(metricsBefore, metricsAfter, (m) => m.cluster?.forwarded ?? 0) / 2,
    // CPU per recorded transfer: every process, and the primary and the secondaries apart.
    serverCpuUsPerRequest: perRequest(
      cpuAfter.master - cpuBefore.master + pids.reduce((sum, pid) => sum + cpuDelta(pid), 0),
    ),
    masterCpuUsPerRequest: perRequest(cpuAfter.master - cpuBefore.master),
    primaryCpuUsPerRequest: primary === undefined ? undefined : perRequest(cpuDelta(primary)),
    secondariesCpuUsPerRequest:
      primary === undefined ? undefined : perRequest(secondaries.reduce((sum, pid) => sum + cpuDelta(pid), 0)),
    clientCpuUsPerRequest: answered === 0 ? undefined : (clientCpu.user + clientCpu.system) / answered,
  };
}

const median = (xs) => {
  const defined = xs.filter((x) => x !== undefined);
  return defined.length === 0 ? undefined : [...defined].sort((a, b) => a - b)[Math.floor(defined.length / 2)];
};
const fmt = (n, digits = 0) => (n === undefined ? '—' : n.toFixed(digits));

/** The columns every results table starts with. */
function loadColumns(r) {
  return {
    connections: r.connections,
    contender: r.contender,
    'req/s': r.failedRounds === ROUNDS ? 'FAILED' : fmt(r.requestsPerSecond),
    'p50 ms': fmt(r.p50Ms, 2),
    'p99 ms': fmt(r.p99Ms, 2),
    'non-2xx or error': r.non2xx,
  };
}

/** The --workers table: (a) and (b) side by side, and (b)/(a). */
function printWorkers(rows) {
  console.table(
    rows.map((r) => ({
      ...loadColumns(r),
      BUSY: r.busy,
      'mean batch': fmt(r.meanBatch, 1),
      'CPU µs/req all': fmt(r.serverCpuUsPerRequest),
      'CPU µs/req master': fmt(r.masterCpuUsPerRequest),
      'CPU µs/req primary': fmt(r.primaryCpuUsPerRequest),
      'CPU µs/req secondaries': fmt(r.secondariesCpuUsPerRequest),
      'conserved, rows == 2xx': r.failedRounds === ROUNDS ? '—' : r.consistent ? 'yes' : 'NO',
    })),
  );
  for (const r of rows) {
    if (Object.keys(r.errorCodes).length > 0)
      console.log(`${r.contender}: non-2xx by code ${JSON.stringify(r.errorCodes)}`);
  }
  for (const connections of new Set(rows.map((r) => r.connections))) {
    const [a, b] = rows.filter((r) => r.connections === connections);
    if (a?.requestsPerSecond && b?.requestsPerSecond) {
      const perRound = a.rounds.map((ra, i) => {
        const rb = b.rounds[i];
        return ra.requestsPerSecond && rb?.requestsPerSecond
          ? (rb.requestsPerSecond / ra.requestsPerSecond).toFixed(2)
          : '—';
      });
      console.log(
        `${connections} connections: (b)/(a) = ${(b.requestsPerSecond / a.requestsPerSecond).toFixed(2)}× req/s ` +
          `(medians; per round ${perRound.join(', ')})`,
      );
    }
  }
}

async function main() {
  const total = SYNCS.length * CONNECTIONS.length * CONTENDERS.length * ROUNDS;
  const started = Date.now();
  let done = 0;
  const results = [];
  let failed = false;
  for (const sync of SYNCS) {
    for (const connections of CONNECTIONS) {
      const rounds = new Map(CONTENDERS.map((c) => [c, []]));
      // Rounds interleave the contenders, so a busy spell of the machine hits them alike.
      for (let r = 0; r < ROUNDS; r++) {
        for (const contender of CONTENDERS) {
          let run;
          try {
            run = await runOnce(contender, sync, connections);
          } catch (error) {
            failed = true;
            run = { error: error.message };
            process.stderr.write(`${contender.name}, ${sync}, ${connections} connections failed: ${error.message}\n`);
          }
          rounds.get(contender).push(run);
          if (run.error === undefined && !(run.conserved && run.recordedMatches)) failed = true;
          done++;
          process.stderr.write(
            `[${String(done).padStart(2)}/${total}] ${sync.padEnd(6)} ${String(connections).padStart(3)} conn  ` +
              `${contender.name.padEnd(36)} ${run.error ? 'FAILED' : `${fmt(run.requestsPerSecond).padStart(6)} req/s`}` +
              `  (${Math.round((Date.now() - started) / 1000)} s)\n`,
          );
        }
      }
      for (const contender of CONTENDERS) {
        const ok = rounds.get(contender).filter((x) => x.error === undefined);
        const pick = (key) => median(ok.map((x) => x[key]));
        results.push({
          sync,
          connections,
          contender: contender.name,
          env: contender.env,
          failedRounds: rounds.get(contender).length - ok.length,
          requestsPerSecond: pick('requestsPerSecond'),
          p50Ms: pick('p50Ms'),
          p99Ms: pick('p99Ms'),
          // autocannon counts a timed-out request in `errors` as well as in `timeouts`.
          non2xx: ok.reduce((sum, x) => sum + x.non2xx + x.errors, 0),
          meanBatch: pick('meanBatch'),
          peakQueueDepth: pick('peakQueueDepth'),
          serverCpuUsPerRequest: pick('serverCpuUsPerRequest'),
          busy: ok.reduce((sum, x) => sum + (x.errorCodes.BUSY ?? 0), 0),
          errorCodes: ok.reduce((all, x) => {
            for (const [code, n] of Object.entries(x.errorCodes)) all[code] = (all[code] ?? 0) + n;
            return all;
          }, {}),
          masterCpuUsPerRequest: pick('masterCpuUsPerRequest'),
          primaryCpuUsPerRequest: pick('primaryCpuUsPerRequest'),
          secondariesCpuUsPerRequest: pick('secondariesCpuUsPerRequest'),
          consistent: ok.length > 0 && ok.every((x) => x.conserved && x.recordedMatches),
          rounds: rounds.get(contender),
        });
      }
    }
  }

  console.log(
    `bench:http${args.quick ? ' (--quick)' : ''}: demo over HTTP, POST /transfers only, ${DURATION_S} s per run ` +
      `after ${WARMUP_S} s of warm-up, ${ROUNDS} round(s)${ROUNDS > 1 ? ', medians' : ''}, ${ACCOUNTS} accounts` +
      `${WORKERS > 1 ? `, ${WORKERS} node:cluster workers` : ''}; ` +
      `node ${process.version}, ${cpus().length} cores (autocannon shares them with the demo)`,
  );
  for (const sync of SYNCS) {
    console.log(`\nsynchronous=${sync}`);
    if (WORKERS > 1) {
      printWorkers(results.filter((r) => r.sync === sync));
      continue;
    }
    console.table(
      results
        .filter((r) => r.sync === sync)
        .map((r) => ({
          ...loadColumns(r),
          'mean batch': fmt(r.meanBatch, 1),
          'peak queue': fmt(r.peakQueueDepth),
          'server CPU µs/req': fmt(r.serverCpuUsPerRequest),
          'conserved, rows == 2xx': r.failedRounds === ROUNDS ? '—' : r.consistent ? 'yes' : 'NO',
        })),
    );
  }
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          quick: args.quick,
          durationSeconds: DURATION_S,
          warmupSeconds: WARMUP_S,
          rounds: ROUNDS,
          accounts: ACCOUNTS,
          node: process.version,
          cores: cpus().length,
          results,
        },
        null,
        2,
      ),
    );
    console.log(`figures written to ${args.json}`);
  }
  if (failed) {
    console.error('\nat least one run failed or a consistency check did not hold (see above)');
    process.exitCode = 1;
  }
}

await main();
