#!/usr/bin/env node
// Group commit as an app sees it: the demo's real HTTP stack (`node dist/src/main.js`, a child
// process per run, fresh database file, its own port) driven by autocannon with keep-alive
// connections, write requests only (POST /transfers between seeded accounts). Contenders: group
// commit (the default) and group commit off (WRITE_MAX_BATCH_SIZE=1), plus one per `batchYield`
// mode given with --yield-modes. After each run: money is conserved and the transfers recorded
// equal the 2xx responses (plus at most the requests still in flight when autocannon stopped).
// Not a test: it prints figures; it exits 1 only when a run failed or a consistency check did.
// Usage: npm run bench:http [-- --quick] [--duration 10] [--connections 1,64] [--sync FULL,NORMAL]
//        [--yield-modes auto,never,always] [--rounds N] [--warmup 1] [--json <file>]
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { startDemoServer } from './demo-server.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string', default: '1,64' },
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
const CONNECTIONS = list(args.connections).map((c) => positiveInteger('connections', c));
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
const CONTENDERS = [
  { name: 'group commit (default)', env: {} },
  { name: 'group commit off (maxBatchSize 1)', env: { WRITE_MAX_BATCH_SIZE: '1' } },
  ...YIELD_MODES.map((mode) => ({ name: `group commit, batchYield '${mode}'`, env: { WRITE_BATCH_YIELD: mode } })),
];

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
      },
    ],
  });
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  const result = await instance;
  latencies.sort((a, b) => a - b);
  return { result, latencies };
}

const percentile = (sorted, p) =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** One run: a fresh demo, accounts seeded, a warm-up, the measured load, the checks. */
async function runOnce(contender, sync, connections) {
  const server = await startDemoServer({ WRITE_SYNCHRONOUS: sync, ...contender.env });
  try {
    const ids = await seed(server.url);
    if (WARMUP_S > 0) await drive(server.url, ids, connections, WARMUP_S);
    const metricsBefore = await settled(server.url);
    const totalsBefore = await call(server.url, 'GET', '/totals');
    const serverCpuBefore = server.cpuMicros();
    const clientCpuBefore = process.cpuUsage();
    const { result, latencies } = await drive(server.url, ids, connections, DURATION_S);
    const clientCpu = process.cpuUsage(clientCpuBefore);
    const metricsAfter = await settled(server.url);
    // Everything the server did for this load, the requests cut off at the stop included.
    const serverCpuAfter = server.cpuMicros();
    const jobs = metricsAfter.accepted - metricsBefore.accepted;
    const totalsAfter = await call(server.url, 'GET', '/totals');
    const answered = result['1xx'] + result['2xx'] + result['3xx'] + result['4xx'] + result['5xx'];
    const ok = result['2xx'];
    const recorded = totalsAfter.transfers - totalsBefore.transfers;
    // A request autocannon sent but stopped waiting for at the end may still commit on the server.
    const unanswered = Math.max(0, result.requests.sent - answered);
    const batches = {
      committed: metricsAfter.batches.committed - metricsBefore.batches.committed,
      jobs: metricsAfter.batches.jobs - metricsBefore.batches.jobs,
    };
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
      recorded,
      unanswered,
      conserved: totalsAfter.totalBalance === totalsBefore.totalBalance,
      recordedMatches: recorded >= ok && recorded - ok <= unanswered,
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

const median = (xs) => {
  const defined = xs.filter((x) => x !== undefined);
  return defined.length === 0 ? undefined : [...defined].sort((a, b) => a - b)[Math.floor(defined.length / 2)];
};
const fmt = (n, digits = 0) => (n === undefined ? '—' : n.toFixed(digits));

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
          consistent: ok.length > 0 && ok.every((x) => x.conserved && x.recordedMatches),
          rounds: rounds.get(contender),
        });
      }
    }
  }

  console.log(
    `bench:http${args.quick ? ' (--quick)' : ''}: demo over HTTP, POST /transfers only, ${DURATION_S} s per run ` +
      `after ${WARMUP_S} s of warm-up, ${ROUNDS} round(s)${ROUNDS > 1 ? ', medians' : ''}, ${ACCOUNTS} accounts; ` +
      `node ${process.version}, ${cpus().length} cores (autocannon shares them with the demo)`,
  );
  for (const sync of SYNCS) {
    console.log(`\nsynchronous=${sync}`);
    console.table(
      results
        .filter((r) => r.sync === sync)
        .map((r) => ({
          connections: r.connections,
          contender: r.contender,
          'req/s': r.failedRounds === ROUNDS ? 'FAILED' : fmt(r.requestsPerSecond),
          'p50 ms': fmt(r.p50Ms, 2),
          'p99 ms': fmt(r.p99Ms, 2),
          'non-2xx or error': r.non2xx,
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
