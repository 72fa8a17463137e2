#!/usr/bin/env node
// Several processes writing one SQLite file (issue 12, item 9): P child processes (bench/process-member.mjs)
// × C in-process callers, each caller awaiting one-row writes (`submit()` of a handler doing a
// TypeORM insert) at synchronous=FULL, J jobs per caller, on a fresh WAL file per run:
//   (a) own coordinators: every process with its own plain Coordinator; they meet at SQLite's file
//       lock (BEGIN IMMEDIATE + the busy budget), each group-commits alone;
//   (b) cluster: `cluster: {}` on every process; one is elected primary, the others forward their
//       writes to it over its Unix socket (the primary's own callers submit locally);
//   ceiling: 1 process × P·C callers, its own coordinator (what forwarding can approach).
// The three interleave within every round; medians over rounds. Latency is measured in the caller
// (child) per job; jobs/s = acknowledged jobs / (last caller's end − first caller's start); CPU is
// process.cpuUsage() of every process over the run (from just before the callers start until all
// have finished). Then, on the cluster of every round, the forwarding overhead at one caller: one
// caller on a secondary against one caller on the primary (the others idle), alternating in slices.
// Not a test: it prints figures, it asserts nothing.
// Usage: npm run bench -- --processes 4 [--callers 16] [--jobs 250] [--rounds 3] [--lone 400]
//          [--sync FULL] [--json <file>]   (or: npm run bench:processes -- …)
//   --root <repo>: the repository whose build (dist/) to measure, e.g. a copy with a patch applied
//   --profile <dir>: every member writes a V8 CPU profile there (--cpu-prof), named after its pid
//   --jobs: per caller per run (a run is P·C·J jobs); --lone: jobs per side per round at one caller (0: skip)
import { fork } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { freshFiles, integerFlag, openRows } from './rows.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const MEMBER = join(here, 'process-member.mjs');

const { values: args } = parseArgs({
  options: {
    processes: { type: 'string', default: '4' },
    callers: { type: 'string', default: '16' },
    jobs: { type: 'string', default: '250' },
    rounds: { type: 'string', default: '3' },
    lone: { type: 'string', default: '400' },
    sync: { type: 'string', default: 'FULL' },
    json: { type: 'string' },
    profile: { type: 'string' },
    root: { type: 'string', default: join(here, '..') },
    // Accepted (the suite's flags) and ignored here.
    quick: { type: 'boolean', default: false },
  },
});
const PROCESSES = integerFlag('processes', args.processes, 2);
const CALLERS = integerFlag('callers', args.callers);
const JOBS = integerFlag('jobs', args.jobs);
const ROUNDS = integerFlag('rounds', args.rounds);
const LONE = integerFlag('lone', args.lone, 0);
const SYNC = args.sync;
/** The build measured: that of `--root` (default this repository), as `npm run bench` leaves it. */
const LIB = join(resolve(args.root), 'dist/libs/write-coordinator/src/core/index.js');
if (!['OFF', 'NORMAL', 'FULL'].includes(SYNC)) {
  console.error(`--sync takes OFF, NORMAL or FULL (received '${SYNC}')`);
  process.exit(2);
}
/** Jobs per caller run before the measured run (JIT, prepared statements, connections), not counted. */
const WARMUP = Math.min(20, JOBS);
/** The lone caller alternates between secondary and primary in slices of this many jobs. */
const LONE_SLICE = 50;

const now = () => performance.timeOrigin + performance.now();
const { dir, next: freshFile } = freshFiles('wc-bench-processes-');

/** One forked member process, driven over IPC. */
class Member {
  #nextId = 1;
  #waiting = new Map();
  #output = '';

  constructor(index, database, cluster) {
    this.index = index;
    this.child = fork(MEMBER, [], {
      env: {
        ...process.env,
        WC_LIB: LIB,
        DATABASE: database,
        INDEX: String(index),
        SYNCHRONOUS: SYNC,
        ...(cluster ? { CLUSTER: JSON.stringify(cluster) } : {}),
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: args.profile ? ['--cpu-prof', '--cpu-prof-dir', resolve(args.profile)] : [],
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

  get pid() {
    return this.child.pid;
  }

  call(message) {
    const id = this.#nextId++;
    return new Promise((done, fail) => {
      this.#waiting.set(id, done);
      this.exited.then((how) => fail(this.#died(how, message.cmd)));
      this.child.send({ ...message, id });
    });
  }

  /** `metrics()` of its coordinator and the process's CPU time so far (µs). */
  metrics() {
    return this.call({ cmd: 'metrics' });
  }

  async close() {
    await this.call({ cmd: 'close' });
    await this.exited;
  }

  #died(how, what) {
    return new Error(`member ${this.index} (pid ${this.pid}) exited (${how}) before '${what}':\n${this.#output}`);
  }
}

/** A fresh WAL file with the `rows` table, created once here (the members do not synchronise). */
async function freshDatabase() {
  const file = freshFile();
  const ds = await openRows(file);
  await ds.destroy();
  return file;
}

const countRows = (file) => {
  const db = new Database(file, { readonly: true });
  try {
    return db.prepare('SELECT COUNT(*) AS n FROM rows').get().n;
  } finally {
    db.close();
  }
};

async function poll(what, condition, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

/**
 * Starts `count` members at once on `file` and waits until all are ready; with `cluster`, until
 * exactly one is primary and the primary counts the others as connected peers.
 */
async function startMembers(file, count, cluster) {
  const members = Array.from({ length: count }, (_, i) => new Member(i, file, cluster));
  await Promise.all(members.map((m) => m.ready));
  if (!cluster) return { members, primary: undefined };
  const primary = await poll(`one primary with ${count - 1} peers`, async () => {
    const metrics = await Promise.all(members.map((m) => m.metrics()));
    const primaries = members.filter((_, i) => metrics[i].metrics.cluster.role === 'primary');
    if (primaries.length > 1) throw new Error(`${primaries.length} primaries`);
    const [only] = primaries;
    if (!only) return undefined;
    return metrics[members.indexOf(only)].metrics.cluster.peers === count - 1 ? only : undefined;
  });
  return { members, primary };
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);
const percentile = (sorted, p) =>
  sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Sends go to `members` (each running `callers` × `jobs`), all starting at the same instant. */
async function go(members, callers, jobs, extra = {}) {
  const startAt = now() + 50;
  return Promise.all(
    members.map((m) => m.call({ cmd: 'go', callers, jobs, startAt, ...extra }).then((r) => r.summary)),
  );
}

/**
 * One measured run: `processes` members (own coordinators, or a cluster) × `callers` callers ×
 * `JOBS` jobs, then (on a cluster) the lone-caller comparison.
 */
async function runSide(kind, processes, callers) {
  const file = await freshDatabase();
  const cluster = kind === 'cluster' ? {} : undefined;
  const { members, primary } = await startMembers(file, processes, cluster);
  try {
    const warm = await go(members, callers, WARMUP);
    const before = await Promise.all(members.map((m) => m.metrics()));
    const summaries = await go(members, callers, JOBS);
    const after = await Promise.all(members.map((m) => m.metrics()));

    const latencies = summaries.flatMap((s) => s.latencies).sort((a, b) => a - b);
    const acknowledged = sum(summaries.map((s) => s.acknowledged));
    const seconds =
      (Math.max(...summaries.map((s) => s.endedAt)) - Math.min(...summaries.map((s) => s.startedAt))) / 1e3;
    const errors = {};
    for (const s of summaries) for (const [code, n] of Object.entries(s.errors)) errors[code] = (errors[code] ?? 0) + n;
    const delta = (i, pick) => pick(after[i]) - pick(before[i]);
    const committed = members.map((_, i) => delta(i, (m) => m.metrics.batches.committed));
    const batchJobs = members.map((_, i) => delta(i, (m) => m.metrics.batches.jobs));
    const cpu = members.map((_, i) => delta(i, (m) => m.cpuUs));
    const primaryIndex = primary ? members.indexOf(primary) : -1;
    const result = {
      kind,
      processes,
      callers,
      jobsPerSecond: acknowledged / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.at(-1),
      acknowledged,
      errors,
      busy: errors.BUSY ?? 0,
      // Mean jobs per committed transaction over the processes that committed (on a cluster: the primary).
      meanBatch: sum(batchJobs) / Math.max(1, sum(committed)),
      committingProcesses: committed.filter((n) => n > 0).length,
      cpuUsPerJob: sum(cpu) / acknowledged,
      primaryCpuUsPerJob: primary ? cpu[primaryIndex] / acknowledged : undefined,
      secondariesCpuUsPerForwardedJob: primary
        ? sum(cpu.filter((_, i) => i !== primaryIndex)) /
          sum(summaries.filter((_, i) => i !== primaryIndex).map((s) => s.acknowledged))
        : undefined,
      forwarded: primary ? delta(primaryIndex, (m) => m.metrics.cluster.forwarded) : 0,
      resent: primary ? sum(members.map((_, i) => delta(i, (m) => m.metrics.cluster.resent))) : 0,
      primaryPid: primary?.pid,
    };
    result.lone = primary && LONE > 0 ? await lone(members, primary) : undefined;
    for (const m of members) await m.close();
    const warmAcknowledged = sum(warm.map((s) => s.acknowledged));
    const loneAcknowledged = result.lone ? result.lone.acknowledged : 0;
    result.rows = countRows(file);
    result.rowsEqualAcknowledged = result.rows === acknowledged + warmAcknowledged + loneAcknowledged;
    return result;
  } finally {
    for (const m of members) m.child.kill('SIGKILL');
  }
}

/**
 * One caller on a secondary against one caller on the primary, the others idle, `LONE` jobs each,
 * alternating in slices of {@link LONE_SLICE}; a third side isolates the exactly-once path from the
 * transport: one caller on the primary whose requests carry a request id (recorded in the requests
 * table, no socket). CPU: the primary's and that secondary's, per job of each side.
 */
async function lone(members, primary) {
  const secondary = members.find((m) => m !== primary);
  const sides = {
    secondary: { member: secondary, requestIds: false },
    primary: { member: primary, requestIds: false },
    primaryWithRequestId: { member: primary, requestIds: true },
  };
  for (const side of Object.values(sides)) Object.assign(side, { latencies: [], cpuUs: 0 });
  let acknowledged = 0;
  const errors = {};
  const cpu = async () =>
    sum((await Promise.all([primary, secondary].map((m) => m.call({ cmd: 'cpu' })))).map((r) => r.cpuUs));
  for (let done = 0; done < LONE; done += LONE_SLICE) {
    for (const side of Object.values(sides)) {
      const before = await cpu();
      const [summary] = await go([side.member], 1, Math.min(LONE_SLICE, LONE - done), { requestIds: side.requestIds });
      side.cpuUs += (await cpu()) - before;
      side.latencies.push(...summary.latencies);
      acknowledged += summary.acknowledged;
      for (const [code, n] of Object.entries(summary.errors)) errors[code] = (errors[code] ?? 0) + n;
    }
  }
  const out = { acknowledged, errors };
  for (const [name, side] of Object.entries(sides)) {
    const sorted = side.latencies.sort((x, y) => x - y);
    out[name] = {
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      meanMs: sum(sorted) / sorted.length,
      // CPU of the primary and the secondary together (the go's 50 ms start delay idles), per job of this side.
      cpuUsPerJob: side.cpuUs / sorted.length,
    };
  }
  return out;
}

const median = (xs) => {
  const defined = xs.filter((x) => x !== undefined && !Number.isNaN(x));
  return defined.length === 0 ? undefined : [...defined].sort((a, b) => a - b)[Math.floor(defined.length / 2)];
};
const fmt = (n, digits = 0) => (n === undefined ? '—' : n.toFixed(digits));
const errorText = (errors) =>
  Object.keys(errors).length === 0
    ? '0'
    : Object.entries(errors)
        .map(([code, n]) => `${code} ${n}`)
        .join(', ');

const SIDES = [
  { kind: 'own', label: `(a) ${PROCESSES} processes, own coordinators`, processes: PROCESSES, callers: CALLERS },
  { kind: 'cluster', label: `(b) ${PROCESSES} processes, cluster`, processes: PROCESSES, callers: CALLERS },
  {
    kind: 'ceiling',
    label: `ceiling: 1 process × ${PROCESSES * CALLERS} callers`,
    processes: 1,
    callers: PROCESSES * CALLERS,
  },
];

async function main() {
  console.log(
    `write-coordinator, several processes on one file: ${PROCESSES} processes × ${CALLERS} callers × ${JOBS} jobs ` +
      `(${PROCESSES * CALLERS * JOBS} one-row writes per run), synchronous=${SYNC}, ${ROUNDS} round(s), median; ` +
      `lone caller ${LONE} jobs per side per round; node ${process.version}, ${cpus().length} cores`,
  );
  const started = Date.now();
  const runs = Object.fromEntries(SIDES.map((s) => [s.kind, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const side of SIDES) {
      const r = await runSide(side.kind, side.processes, side.callers);
      runs[side.kind].push(r);
      process.stderr.write(
        `round ${round}/${ROUNDS}  ${side.label.padEnd(40)} ${fmt(r.jobsPerSecond).padStart(6)} jobs/s  ` +
          `p50 ${fmt(r.p50Ms, 2)} ms  p99 ${fmt(r.p99Ms, 2)} ms  errors ${errorText(r.errors)}  ` +
          `batch ${fmt(r.meanBatch, 1)}  rows ${r.rowsEqualAcknowledged ? '== acked' : 'NOT acked'}` +
          (r.lone
            ? `  | lone p50 secondary ${fmt(r.lone.secondary.p50Ms, 2)} / primary ${fmt(r.lone.primary.p50Ms, 2)} ms`
            : '') +
          `  (${Math.round((Date.now() - started) / 1000)} s)\n`,
      );
    }
  }

  const summary = Object.fromEntries(
    SIDES.map(({ kind, label }) => {
      const rs = runs[kind];
      const errors = {};
      for (const r of rs) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n;
      return [
        kind,
        {
          label,
          jobsPerSecond: median(rs.map((r) => r.jobsPerSecond)),
          p50Ms: median(rs.map((r) => r.p50Ms)),
          p99Ms: median(rs.map((r) => r.p99Ms)),
          maxMs: median(rs.map((r) => r.maxMs)),
          errors,
          meanBatch: median(rs.map((r) => r.meanBatch)),
          committingProcesses: median(rs.map((r) => r.committingProcesses)),
          cpuUsPerJob: median(rs.map((r) => r.cpuUsPerJob)),
          primaryCpuUsPerJob: median(rs.map((r) => r.primaryCpuUsPerJob)),
          secondariesCpuUsPerForwardedJob: median(rs.map((r) => r.secondariesCpuUsPerForwardedJob)),
          rowsEqualAcknowledged: rs.every((r) => r.rowsEqualAcknowledged),
          resent: sum(rs.map((r) => r.resent)),
        },
      ];
    }),
  );
  const { own: a, cluster: b, ceiling: c } = summary;
  console.log(
    `\n${PROCESSES} processes × ${CALLERS} callers, one-row writes, synchronous=${SYNC} (medians over rounds; errors: all rounds)`,
  );
  const row = (name, get, digits = 0, ratio = true) => ({
    '': name,
    [a.label]: typeof get(a) === 'number' ? fmt(get(a), digits) : get(a),
    [b.label]: typeof get(b) === 'number' ? fmt(get(b), digits) : get(b),
    '(b)/(a)': ratio && typeof get(a) === 'number' ? fmt(get(b) / get(a), 2) : '',
    [c.label]: typeof get(c) === 'number' ? fmt(get(c), digits) : get(c),
  });
  console.table([
    row('jobs/s', (s) => s.jobsPerSecond),
    row('p50 ms (per job, in the caller)', (s) => s.p50Ms, 2),
    row('p99 ms', (s) => s.p99Ms, 2),
    row('max ms', (s) => s.maxMs, 1),
    row('BUSY errors', (s) => s.errors.BUSY ?? 0, 0, false),
    row(
      'other errors',
      (s) => errorText(Object.fromEntries(Object.entries(s.errors).filter(([k]) => k !== 'BUSY'))),
      0,
      false,
    ),
    row('mean batch (committing processes)', (s) => s.meanBatch, 1),
    row('committing processes', (s) => s.committingProcesses, 0, false),
    row('CPU µs/job, all processes', (s) => s.cpuUsPerJob, 1),
    row('rows == acknowledged', (s) => (s.rowsEqualAcknowledged ? 'yes' : 'NO'), 0, false),
  ]);
  console.log(
    `cluster CPU split: primary ${fmt(b.primaryCpuUsPerJob, 1)} µs per job (all jobs), ` +
      `secondaries ${fmt(b.secondariesCpuUsPerForwardedJob, 1)} µs per forwarded job; requests resent: ${b.resent}`,
  );
  const lones = runs.cluster.map((r) => r.lone).filter(Boolean);
  if (lones.length > 0) {
    const m = (side, key) => median(lones.map((l) => l[side][key]));
    const loneErrors = {};
    for (const l of lones)
      for (const [code, n] of Object.entries(l.errors)) loneErrors[code] = (loneErrors[code] ?? 0) + n;
    console.log(`\nforwarding overhead, 1 caller (others idle), ${LONE} jobs per side per round, medians over rounds`);
    console.table(
      ['p50Ms', 'p99Ms', 'meanMs', 'cpuUsPerJob'].map((key) => ({
        '': { p50Ms: 'p50 ms', p99Ms: 'p99 ms', meanMs: 'mean ms', cpuUsPerJob: 'CPU µs/job (primary + secondary)' }[
          key
        ],
        'secondary (forwarded)': fmt(m('secondary', key), key === 'cpuUsPerJob' ? 0 : 3),
        'primary (local)': fmt(m('primary', key), key === 'cpuUsPerJob' ? 0 : 3),
        'primary, with request id (exactly-once path, local)': fmt(
          m('primaryWithRequestId', key),
          key === 'cpuUsPerJob' ? 0 : 3,
        ),
        'secondary / primary': fmt(m('secondary', key) / m('primary', key), 2),
      })),
    );
    console.log(`errors at one caller: ${errorText(loneErrors)}`);
  }
  if (args.json) {
    writeFileSync(
      args.json,
      JSON.stringify(
        {
          processes: PROCESSES,
          callers: CALLERS,
          jobs: JOBS,
          rounds: ROUNDS,
          sync: SYNC,
          lone: LONE,
          node: process.version,
          cores: cpus().length,
          summary,
          runs: Object.fromEntries(Object.entries(runs).map(([k, rs]) => [k, rs])),
        },
        null,
        2,
      ),
    );
    console.log(`figures written to ${args.json}`);
  }
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
