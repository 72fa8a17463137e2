#!/usr/bin/env node
// Several hosts on LiteFS (issue 13), on the LiteFS stand-in (test/litefs-stand-in/, a TEST DOUBLE:
// per-node mount directories on this one machine, asynchronous replication by whole-database copies,
// a preload agent in each host's process). Three hosts, node-a the primary, one process each
// (bench/multi-host-member.mjs) with `cluster: { primary: { strategy: 'litefs' }, secret, http }`;
// every write is a `submit()` of a one-row TypeORM insert with its own `meta.requestId`, at
// synchronous=FULL:
//   (a) local:            a caller on node-a, the primary;
//   (b) forwarded + RYW:  a caller on node-b, forwarded over HTTP (upgraded connection kept open),
//                         read-your-writes on (the default 5000 ms wait: the answer waits until
//                         node-b's `-pos` reaches the primary's TXID, i.e. includes replication);
//   (c) forwarded, no RYW: a caller on node-c, `readYourWritesMs: false` (answered on commit).
// At 1 caller the three alternate in slices (so machine noise hits all alike): p50/p90/p99. At
// `--callers` per host (16): each side alone (the others idle), then all three hosts at once:
// jobs/s and p99. With the replication delay `--delay` (5 ms), then the 1-caller slices and (b) at
// `--callers` again with `--compare-delay` (50 ms, the stand-in's default). Fresh hosts on a fresh
// stand-in for each of the three phases of a round (the stand-in copies the whole database every
// replication round: a grown database would slow the later phases); medians over rounds. After each
// answer the caller reads its row on its own host (outside the measured time): "unseen" counts the
// reads that missed it. Latency is measured in the caller (the
// member process); jobs/s = acknowledged / (last answer − first start).
// Not a test: it prints figures (stdout; progress on stderr), it asserts nothing.
// Usage: npm run bench:multi-host [-- --rounds 3] [--jobs 100] [--lone 400] [--callers 16]
//          [--delay 5] [--compare-delay 50] [--json <file>]   (or: npm run bench -- --multi-host …)
//   --root <repo>: the repository whose build (dist/, as `nest build` leaves it) to measure
//   --jobs: per caller per run at --callers; --lone: jobs per side per round at one caller
//   --compare-delay 0: skip the second delay
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { transformSync } from '@swc/core';
import Database from 'better-sqlite3';
import { integerFlag, openRows } from './rows.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const MEMBER = join(here, 'multi-host-member.mjs');

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    jobs: { type: 'string', default: '100' },
    lone: { type: 'string', default: '400' },
    callers: { type: 'string', default: '16' },
    delay: { type: 'string', default: '5' },
    'compare-delay': { type: 'string', default: '50' },
    json: { type: 'string' },
    root: { type: 'string', default: join(here, '..') },
    // Accepted (the suite's route to this file and its flags) and ignored here.
    'multi-host': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});
const ROUNDS = integerFlag('rounds', args.rounds);
const JOBS = integerFlag('jobs', args.jobs);
const LONE = integerFlag('lone', args.lone, 0);
const CALLERS = integerFlag('callers', args.callers);
const DELAY = integerFlag('delay', args.delay, 0);
const COMPARE_DELAY = integerFlag('compare-delay', args['compare-delay'], 0);
const ROOT = resolve(args.root);
/** The build measured: that of `--root` (default this repository), as `nest build` leaves it. */
const LIB = join(ROOT, 'dist/libs/write-coordinator/src/core/index.js');
/** The one caller alternates between the sides in slices of this many jobs. */
const SLICE = 25;
/** Jobs per caller run on every host before the measured runs of a round (JIT, connections), not counted. */
const WARMUP = 20;
const NODES = ['node-a', 'node-b', 'node-c'];
const SECRET = 'bench-multi-host-secret';

const SIDES = [
  { key: 'local', host: 'node-a', label: '(a) local, on the primary' },
  { key: 'ryw', host: 'node-b', label: '(b) forwarded, read-your-writes' },
  { key: 'noRyw', host: 'node-c', label: '(c) forwarded, readYourWritesMs: false' },
];

/**
 * The LiteFS stand-in is TypeScript (it lives with the tests): a tiny loader compiles its files with
 * swc (as Jest does) when `require` meets them, in this process only. The agent it preloads into the
 * hosts is plain CommonJS and stays where it is.
 */
function loadStandIn() {
  const require = createRequire(import.meta.url);
  require.extensions['.ts'] ??= (module, filename) => {
    const { code } = transformSync(readFileSync(filename, 'utf8'), {
      filename,
      jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
      module: { type: 'commonjs' },
      sourceMaps: false,
    });
    module._compile(code, filename);
  };
  const { Replication } = require(join(ROOT, 'test/litefs-stand-in/replication.ts'));
  observeRounds(Replication.prototype);
  return require(join(ROOT, 'test/litefs-stand-in/stand-in.ts')).LiteFsStandIn;
}

/** Durations (ms) of the stand-in's replication rounds (snapshot of the primary, copy into each replica) since the last {@link takeRounds}. */
let roundsMs = [];
/** Wraps the stand-in's replication round to time it (observation only: the round runs unchanged). */
function observeRounds(prototype) {
  const round = prototype.round;
  prototype.round = async function timedRound(...rest) {
    const started = performance.now();
    try {
      return await round.apply(this, rest);
    } finally {
      roundsMs.push(performance.now() - started);
    }
  };
}
/** The replication rounds since the last call: count, median and p99 duration. */
function takeRounds() {
  const sorted = roundsMs.sort((x, y) => x - y);
  roundsMs = [];
  return { count: sorted.length, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
}
const LiteFsStandIn = loadStandIn();

const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

/** A free TCP port on 127.0.0.1 (for a host's forwarding endpoint). */
function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** One forked host process, driven over IPC. */
class Host {
  #nextId = 1;
  #waiting = new Map();
  #output = '';

  constructor(index, name, node, ports, cluster) {
    this.name = name;
    this.child = fork(MEMBER, [], {
      env: {
        ...process.env,
        ...node.env, // the stand-in's preload agent and mount
        WC_LIB: LIB,
        DATABASE: node.databasePath,
        INDEX: String(index),
        HOSTNAME: name,
        HOST_PORTS: JSON.stringify(ports),
        CLUSTER: JSON.stringify(cluster),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
    });
    this.child.stdout.on('data', (chunk) => (this.#output += chunk));
    this.child.stderr.on('data', (chunk) => (this.#output += chunk));
    this.exited = new Promise((done) => this.child.once('exit', (code, signal) => done(code ?? signal)));
    this.ready = new Promise((done, fail) => {
      this.child.on('message', (message) => {
        if (message.type === 'ready') return done(message);
        const waiter = this.#waiting.get(message.id);
        this.#waiting.delete(message.id);
        waiter?.(message);
      });
      this.exited.then((how) => fail(this.#died(how, 'ready')));
    });
  }

  call(message) {
    const id = this.#nextId++;
    return new Promise((done, fail) => {
      this.#waiting.set(id, done);
      this.exited.then((how) => fail(this.#died(how, message.cmd)));
      this.child.send({ ...message, id });
    });
  }

  async metrics() {
    return (await this.call({ cmd: 'metrics' })).metrics;
  }

  async close() {
    await this.call({ cmd: 'close' });
    await this.exited;
  }

  #died(how, what) {
    return new Error(`host ${this.name} (pid ${this.child.pid}) exited (${how}) before '${what}':\n${this.#output}`);
  }
}

async function poll(what, condition, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A fresh stand-in (node-a the primary, the `rows` table created there and copied to the others)
 * and one host process per node; resolves once node-b and node-c are connected to node-a.
 */
async function startHosts(root, delayMs) {
  mkdirSync(join(root, 'node-a'));
  await (await openRows(join(root, 'node-a', 'app.db'))).destroy();
  const standIn = await LiteFsStandIn.start({ root, nodes: NODES, primary: 'node-a', replicationDelayMs: delayMs });
  const ports = {};
  for (const name of NODES) ports[name] = await freePort();
  const hosts = {};
  try {
    for (const [index, name] of NODES.entries()) {
      const node = standIn.node(name);
      const cluster = {
        secret: SECRET,
        primary: { strategy: 'litefs', mountDir: node.mountDir, eventsUrl: node.eventsUrl },
        ...(name === 'node-c' ? { readYourWritesMs: false } : {}),
      };
      hosts[name] = new Host(index, name, node, ports, cluster);
      await hosts[name].ready;
    }
    for (const name of ['node-b', 'node-c']) {
      await poll(`${name} to connect to node-a`, async () => {
        const { cluster } = await hosts[name].metrics();
        return cluster.role === 'secondary' && cluster.primaryHost === 'node-a' && cluster.peers === 1;
      });
    }
    const { cluster } = await hosts['node-a'].metrics();
    if (cluster.role !== 'primary') throw new Error(`node-a is ${cluster.role}, not the primary`);
  } catch (error) {
    for (const host of Object.values(hosts)) host.child.kill('SIGKILL');
    await standIn.stop();
    throw error;
  }
  return { standIn, hosts };
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const percentile = (sorted, p) =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const addErrors = (into, from) => {
  for (const [code, n] of Object.entries(from)) into[code] = (into[code] ?? 0) + n;
  return into;
};

/** `callers` × `jobs` on each of `hosts`, all starting at the same instant; their summaries. */
async function go(hosts, callers, jobs) {
  const startAt = now() + 20;
  return Promise.all(hosts.map((h) => h.call({ cmd: 'go', callers, jobs, startAt }).then((r) => r.summary)));
}

/** Latency figures of a list of latencies (ms). */
function latencyFigures(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted.at(-1),
    meanMs: sum(sorted) / sorted.length,
  };
}

/** One caller per side, the sides taking turns in slices of {@link SLICE} jobs, `LONE` jobs each. */
async function lone(hosts) {
  const collected = Object.fromEntries(SIDES.map((s) => [s.key, { latencies: [], unseen: 0, errors: {} }]));
  for (let done = 0; done < LONE; done += SLICE) {
    for (const side of SIDES) {
      const [summary] = await go([hosts[side.host]], 1, Math.min(SLICE, LONE - done));
      const into = collected[side.key];
      into.latencies.push(...summary.latencies);
      into.unseen += summary.unseen;
      addErrors(into.errors, summary.errors);
    }
  }
  return Object.fromEntries(
    SIDES.map((s) => {
      const c = collected[s.key];
      return [
        s.key,
        { ...latencyFigures(c.latencies), acknowledged: c.latencies.length, unseen: c.unseen, errors: c.errors },
      ];
    }),
  );
}

/** A run of `CALLERS` × `JOBS` on each of `hosts` at once: per host and overall. */
async function loaded(hosts) {
  takeRounds();
  const summaries = await go(hosts, CALLERS, JOBS);
  const rounds = takeRounds();
  const throughput = (ss) =>
    sum(ss.map((s) => s.acknowledged)) /
    ((Math.max(...ss.map((s) => s.endedAt)) - Math.min(...ss.map((s) => s.startedAt))) / 1e3);
  const perHost = Object.fromEntries(
    summaries.map((s) => [
      s.host,
      {
        jobsPerSecond: throughput([s]),
        ...latencyFigures(s.latencies),
        acknowledged: s.acknowledged,
        unseen: s.unseen,
        errors: s.errors,
      },
    ]),
  );
  return {
    perHost,
    jobsPerSecond: throughput(summaries),
    ...latencyFigures(summaries.flatMap((s) => s.latencies)),
    acknowledged: sum(summaries.map((s) => s.acknowledged)),
    unseen: sum(summaries.map((s) => s.unseen)),
    errors: summaries.reduce((into, s) => addErrors(into, s.errors), {}),
    rounds,
  };
}

/** Rows in every node's database once replication caught up, against the writes acknowledged. */
async function countRows(standIn) {
  await standIn.waitForReplication({ timeoutMs: 30_000 });
  return NODES.map((name) => {
    const db = new Database(standIn.node(name).databasePath, { readonly: true });
    try {
      return db.prepare('SELECT COUNT(*) AS n FROM rows').get().n;
    } finally {
      db.close();
    }
  });
}

/** The size of a database (pages × page size). */
function databaseBytes(file) {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('page_count', { simple: true }) * db.pragma('page_size', { simple: true });
  } finally {
    db.close();
  }
}

const fmt = (n, digits = 0) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(digits));
const errorText = (errors) =>
  Object.keys(errors).length === 0
    ? '0'
    : Object.entries(errors)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ');
const progress = (text, started) => process.stderr.write(`${text}  (${Math.round((Date.now() - started) / 1000)} s)\n`);

/**
 * Starts fresh hosts on a fresh stand-in with `delayMs`, warms every host up, runs `phase(hosts,
 * standIn)` (which returns its figures and how many writes it had acknowledged), closes the hosts and
 * checks that every node holds exactly the rows acknowledged. A fresh database per phase: the stand-in
 * copies the whole database each replication round, so its size would otherwise carry over.
 */
async function onFreshHosts(name, delayMs, phase) {
  const root = mkdtempSync(join(tmpdir(), 'wc-bench-multi-host-'));
  const { standIn, hosts } = await startHosts(root, delayMs);
  try {
    const warm = await go(Object.values(hosts), 4, WARMUP);
    const { figures, acknowledged } = await phase(hosts, standIn);
    for (const host of Object.values(hosts)) await host.close();
    const rows = await countRows(standIn);
    const expected = acknowledged + sum(warm.map((s) => s.acknowledged));
    const check = {
      phase: name,
      acknowledged: expected,
      rowsPerNode: rows,
      rowsEqualAcknowledged: rows.every((n) => n === expected),
      databaseBytes: databaseBytes(standIn.node('node-a').databasePath),
      warmUpErrors: warm.reduce((into, w) => addErrors(into, w.errors), {}),
    };
    return { figures, check };
  } finally {
    for (const host of Object.values(hosts)) host.child.kill('SIGKILL');
    await standIn.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

const acknowledgedIn = (figures) => sum(Object.values(figures).map((f) => f.acknowledged));

/**
 * One round: (1) one caller per side, alternating, at `DELAY` and at `COMPARE_DELAY` (which first
 * alternates between rounds); (2) `CALLERS` on each side alone (order rotated between rounds), then on
 * all three hosts at once, at `DELAY`; (3) `CALLERS` on (b) at `COMPARE_DELAY`. Each on fresh hosts.
 */
async function round(index, started) {
  const tag = `round ${index}/${ROUNDS}`;
  const result = { delayMs: DELAY, compareDelayMs: COMPARE_DELAY || undefined, checks: [] };
  const roundText = (r) => `stand-in rounds ${r.count}, p50 ${fmt(r.p50Ms, 1)} / p99 ${fmt(r.p99Ms, 1)} ms`;
  const loneLine = (delay, l, rounds) =>
    progress(
      `${tag}  delay ${delay} ms, 1 caller   p50 local ${fmt(l.local.p50Ms, 2)} / RYW ${fmt(l.ryw.p50Ms, 2)} / ` +
        `no RYW ${fmt(l.noRyw.p50Ms, 2)} ms  p99 ${fmt(l.local.p99Ms, 2)} / ${fmt(l.ryw.p99Ms, 2)} / ${fmt(l.noRyw.p99Ms, 2)} ms  ` +
        roundText(rounds),
      started,
    );
  const loadedLine = (delay, label, run) =>
    progress(
      `${tag}  delay ${delay} ms, ${CALLERS} callers  ${label.padEnd(44)} ${fmt(run.jobsPerSecond).padStart(5)} jobs/s  ` +
        `p50 ${fmt(run.p50Ms, 2)} ms  p99 ${fmt(run.p99Ms, 2)} ms  unseen ${run.unseen}  errors ${errorText(run.errors)}  ` +
        roundText(run.rounds),
      started,
    );

  const loneRounds = {};
  if (LONE > 0) {
    const delays = COMPARE_DELAY > 0 ? [DELAY, COMPARE_DELAY] : [DELAY];
    if (index % 2 === 0) delays.reverse();
    const { figures, check } = await onFreshHosts('1 caller', delays[0], async (hosts, standIn) => {
      const byDelay = {};
      for (const delay of delays) {
        standIn.setDelay(delay);
        takeRounds();
        byDelay[delay] = await lone(hosts);
        loneRounds[delay] = takeRounds();
        loneLine(delay, byDelay[delay], loneRounds[delay]);
      }
      return { figures: byDelay, acknowledged: sum(Object.values(byDelay).map(acknowledgedIn)) };
    });
    result.lone = figures[DELAY];
    result.compareLone = COMPARE_DELAY > 0 ? figures[COMPARE_DELAY] : undefined;
    result.loneRounds = loneRounds[DELAY];
    result.compareLoneRounds = loneRounds[COMPARE_DELAY];
    result.checks.push(check);
  }

  const many = await onFreshHosts(`${CALLERS} callers`, DELAY, async (hosts) => {
    const figures = { alone: {} };
    for (const side of SIDES.map((_, i) => SIDES[(i + index - 1) % SIDES.length])) {
      figures.alone[side.key] = await loaded([hosts[side.host]]);
      loadedLine(DELAY, `${side.label}, alone`, figures.alone[side.key]);
    }
    figures.allHosts = await loaded(NODES.map((name) => hosts[name]));
    loadedLine(DELAY, 'all 3 hosts at once (total)', figures.allHosts);
    return { figures, acknowledged: acknowledgedIn(figures.alone) + figures.allHosts.acknowledged };
  });
  result.loaded = many.figures.alone;
  result.allHosts = many.figures.allHosts;
  result.checks.push(many.check);

  if (COMPARE_DELAY > 0) {
    const compare = await onFreshHosts(`${CALLERS} callers, (b)`, COMPARE_DELAY, async (hosts) => {
      const run = await loaded([hosts['node-b']]);
      loadedLine(COMPARE_DELAY, `${SIDES[1].label}, alone`, run);
      return { figures: run, acknowledged: run.acknowledged };
    });
    result.compareRyw = compare.figures;
    result.checks.push(compare.check);
  }
  return result;
}

const median = (xs) => {
  const defined = xs.filter((x) => x !== undefined && !Number.isNaN(x));
  return defined.length === 0 ? undefined : [...defined].sort((a, b) => a - b)[Math.floor(defined.length / 2)];
};
/** The median over rounds of `pick(round)`. */
const med = (runs, pick) => median(runs.map((r) => pick(r)));
const totalErrors = (runs, pick) => runs.reduce((into, r) => addErrors(into, pick(r) ?? {}), {});
const totalOf = (runs, pick) => sum(runs.map((r) => pick(r) ?? 0));

function report(runs) {
  const out = [];
  const heading = (text) => console.log(`\n${text}`);
  if (LONE > 0) {
    const loneTable = (pick, delay) => {
      heading(
        `1 caller, ${LONE} writes per side per round (slices of ${SLICE}, sides alternating), replication delay ${delay} ms, medians over rounds`,
      );
      const rows = SIDES.map((s) => {
        const figure = (key) => med(runs, (r) => pick(r)?.[s.key][key]);
        return {
          '': s.label,
          'p50 ms': fmt(figure('p50Ms'), 2),
          'p90 ms': fmt(figure('p90Ms'), 2),
          'p99 ms': fmt(figure('p99Ms'), 2),
          'mean ms': fmt(figure('meanMs'), 2),
          '× local (p50)': fmt(figure('p50Ms') / med(runs, (r) => pick(r)?.local.p50Ms), 2),
          'unseen reads': String(totalOf(runs, (r) => pick(r)?.[s.key].unseen)),
          errors: errorText(totalErrors(runs, (r) => pick(r)?.[s.key].errors)),
        };
      });
      console.table(rows);
      out.push({ delayMs: delay, callers: 1, rows });
    };
    loneTable((r) => r.lone, DELAY);
    if (COMPARE_DELAY > 0) loneTable((r) => r.compareLone, COMPARE_DELAY);
  }
  heading(
    `${CALLERS} callers per host, ${JOBS} writes per caller per run, replication delay ${DELAY} ms, medians over rounds`,
  );
  const loadedRow = (label, pick) => ({
    '': label,
    'jobs/s': fmt(med(runs, (r) => pick(r).jobsPerSecond)),
    'p50 ms': fmt(
      med(runs, (r) => pick(r).p50Ms),
      2,
    ),
    'p99 ms': fmt(
      med(runs, (r) => pick(r).p99Ms),
      2,
    ),
    'unseen reads': String(totalOf(runs, (r) => pick(r).unseen)),
    errors: errorText(totalErrors(runs, (r) => pick(r).errors)),
  });
  const loadedRows = [
    ...SIDES.map((s) => loadedRow(`${s.label}, alone`, (r) => r.loaded[s.key])),
    ...SIDES.map((s) => loadedRow(`all 3 hosts at once: ${s.host}`, (r) => r.allHosts.perHost[s.host])),
    loadedRow('all 3 hosts at once: total', (r) => r.allHosts),
  ];
  if (COMPARE_DELAY > 0) {
    loadedRows.push(loadedRow(`(b) alone, replication delay ${COMPARE_DELAY} ms`, (r) => r.compareRyw));
  }
  console.table(loadedRows);
  out.push({ delayMs: DELAY, callers: CALLERS, rows: loadedRows });
  const roundsLine = (label, pick) =>
    `${label}: ${fmt(med(runs, (r) => pick(r)?.count))} rounds, p50 ${fmt(
      med(runs, (r) => pick(r)?.p50Ms),
      1,
    )} ms, ` +
    `p99 ${fmt(
      med(runs, (r) => pick(r)?.p99Ms),
      1,
    )} ms`;
  console.log(
    `stand-in replication rounds (snapshot + copy into both replicas; medians over rounds): ` +
      [
        LONE > 0 ? roundsLine(`1 caller, ${DELAY} ms`, (r) => r.loneRounds) : undefined,
        LONE > 0 && COMPARE_DELAY > 0
          ? roundsLine(`1 caller, ${COMPARE_DELAY} ms`, (r) => r.compareLoneRounds)
          : undefined,
        ...SIDES.map((s) => roundsLine(`${CALLERS} callers ${s.key}`, (r) => r.loaded[s.key].rounds)),
        roundsLine(`${CALLERS} callers all hosts`, (r) => r.allHosts.rounds),
        COMPARE_DELAY > 0
          ? roundsLine(`${CALLERS} callers ryw, ${COMPARE_DELAY} ms`, (r) => r.compareRyw.rounds)
          : undefined,
      ]
        .filter(Boolean)
        .join('; '),
  );
  const checks = runs.flatMap((r) => r.checks);
  const failed = checks.filter((c) => !c.rowsEqualAcknowledged || Object.keys(c.warmUpErrors).length > 0);
  console.log(
    `rows on every node == writes acknowledged, every phase of every round: ${checks.every((c) => c.rowsEqualAcknowledged) ? 'yes' : 'NO'}` +
      failed
        .map(
          (c) =>
            ` [${c.phase}: ${c.acknowledged} acknowledged, rows ${c.rowsPerNode.join('/')}, warm-up errors ${errorText(c.warmUpErrors)}]`,
        )
        .join('') +
      `; database at the end of a phase: ${checks.map((c) => `${c.phase} ${fmt(c.databaseBytes / 1e6, 1)} MB`).join(', ')}`,
  );
  return out;
}

async function main() {
  console.log(
    `write-coordinator, several hosts on the LiteFS stand-in (a test double, one machine, loopback HTTP): ` +
      `3 hosts, node-a the primary; one-row writes with a request id, synchronous=FULL; ` +
      `replication delay ${DELAY} ms${COMPARE_DELAY > 0 ? ` (and ${COMPARE_DELAY} ms)` : ''}; ${ROUNDS} round(s), median; ` +
      `node ${process.version}, ${cpus().length} cores; library: ${LIB}`,
  );
  const started = Date.now();
  const runs = [];
  for (let index = 1; index <= ROUNDS; index++) runs.push(await round(index, started));
  const tables = report(runs);
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          rounds: ROUNDS,
          jobs: JOBS,
          lone: LONE,
          callers: CALLERS,
          delayMs: DELAY,
          compareDelayMs: COMPARE_DELAY,
          slice: SLICE,
          node: process.version,
          cores: cpus().length,
          tables,
          runs,
        },
        null,
        2,
      ),
    );
    console.log(`figures written to ${args.json}`);
  }
}

await main();
