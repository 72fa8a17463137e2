#!/usr/bin/env node
// Per-job cost of the queue mechanism itself: no-op jobs through WriteQueue (with metrics and the
// event hooks on, no listeners) versus p-queue with concurrency 1, side by side in one run.
// Usage: npm run bench:queue [-- --jobs 200000 --rounds 5]
import { parseArgs } from 'node:util';
import PQueue from 'p-queue';
import library from '../dist/libs/write-coordinator/src/core/index.js';
import { silentObserver } from './silent-observer.mjs';
import prometheus from '../dist/libs/write-coordinator/src/observability/prometheus/index.js';
import instrumentation from '../dist/libs/write-coordinator/src/core/instrumentation.js';
import opentelemetry from '../dist/libs/write-coordinator/src/observability/opentelemetry/index.js';
import { Registry } from 'prom-client';

const { WriteQueue } = library;
const { WriteCoordinatorPrometheus } = prometheus;
const { WriteCoordinatorTracing } = opentelemetry;
const { combineObservers } = instrumentation;

/**
 * An instrumentation's observer as a Coordinator hands it to its queue: beside the event bridge
 * (the library's own instrumentations get the job records as they are, coordinator.ts).
 */
function instrumented(instrumentation, queue) {
  const observer = instrumentation.instrument({ name: 'bench', metrics: () => queue().metrics() });
  return combineObservers([silentObserver, observer]);
}

const { values } = parseArgs({
  options: { jobs: { type: 'string', default: '200000' }, rounds: { type: 'string', default: '5' } },
});
const JOBS = Number(values.jobs);
const ROUNDS = Number(values.rounds);
const CALLERS = 64;
const noop = () => undefined;

/** 64 callers, each awaiting its job before submitting the next: the shape of an HTTP service. */
async function callers(submit) {
  let left = JOBS;
  const caller = async () => {
    while (left-- > 0) await submit();
  };
  await Promise.all(Array.from({ length: CALLERS }, caller));
}

/** All jobs submitted at once, then awaited: a burst. */
async function burst(submit) {
  const all = new Array(JOBS);
  for (let i = 0; i < JOBS; i++) all[i] = submit();
  await Promise.all(all);
}

const contenders = {
  'p-queue (concurrency 1)': () => {
    const q = new PQueue({ concurrency: 1 });
    return () => q.add(noop);
  },
  'WriteQueue (metrics + events, no listeners)': () => {
    const q = new WriteQueue({ capacity: JOBS, whenFull: 'wait', timeoutMs: undefined }, silentObserver);
    return () => q.enqueue(noop);
  },
  'WriteQueue (metrics + events + Prometheus)': () => {
    const exporter = new WriteCoordinatorPrometheus({ registry: new Registry() });
    const q = new WriteQueue(
      { capacity: JOBS, whenFull: 'wait', timeoutMs: undefined },
      instrumented(exporter, () => q),
    );
    return () => q.enqueue(noop);
  },
  'WriteQueue (metrics + events + OTel, no SDK)': () => {
    const q = new WriteQueue(
      { capacity: JOBS, whenFull: 'wait', timeoutMs: undefined },
      instrumented(new WriteCoordinatorTracing(), () => q),
    );
    return () => q.enqueue(noop);
  },
  'WriteQueue (no observer)': () => {
    const q = new WriteQueue({ capacity: JOBS, whenFull: 'wait', timeoutMs: undefined });
    return () => q.enqueue(noop);
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(shape, make) {
  const times = [];
  for (let r = 0; r < ROUNDS; r++) {
    const submit = make();
    const t0 = performance.now();
    await shape(submit);
    times.push(((performance.now() - t0) * 1e6) / JOBS); // ns per job
  }
  return median(times);
}

console.log(`no-op jobs: ${JOBS} per round, median of ${ROUNDS} rounds, node ${process.version}`);
for (const [shapeName, shape] of Object.entries({ [`${CALLERS} awaiting callers`]: callers, burst })) {
  // Warm-up so the JIT has seen every contender before timing.
  for (const make of Object.values(contenders)) await shape(make());
  const results = {};
  for (const [name, make] of Object.entries(contenders)) {
    results[name] = await measure(shape, make);
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  const baseline = results['p-queue (concurrency 1)'];
  console.log(`\n${shapeName}`);
  for (const [name, ns] of Object.entries(results)) {
    console.log(
      `  ${name.padEnd(46)} ${ns.toFixed(0).padStart(6)} ns/job   ${(baseline / ns).toFixed(2)}x p-queue speed`,
    );
  }
  const off = results['WriteQueue (metrics + events, no listeners)'];
  const on = results['WriteQueue (metrics + events + Prometheus)'];
  const traced = results['WriteQueue (metrics + events + OTel, no SDK)'];
  console.log(`  Prometheus exporter on: ${(on / off).toFixed(3)}x the cost per job with it off`);
  console.log(`  OpenTelemetry tracing on, no SDK: ${(traced / off).toFixed(3)}x the cost per job with it off`);
}
