// One process of bench/processes.mjs, forked by it: a plain (Nest-free) Coordinator on the shared
// database file, with or without the `cluster` option, whose in-process callers submit one-row
// writes (`submit({ method: 'insert', params: { v } })`, the handler a TypeORM insert) when the
// parent says go. Everything is measured here, in the caller, and sent back as a summary.
//   env: WC_LIB (compiled core entry), DATABASE, CLUSTER (JSON of the cluster option, absent: none),
//        SYNCHRONOUS, INDEX (this member's number, for unique values)
//   in:  { cmd: 'metrics', id } → { type: 'metrics', id, metrics, cpuUs } (cpuUs: CPU time of the process so far)
//        { cmd: 'cpu', id } → { type: 'cpu', id, cpuUs }
//        { cmd: 'go', id, callers, jobs, startAt, requestIds } → at `startAt` (ms, performance.timeOrigin +
//          performance.now()), `callers` concurrent callers each await `jobs` one-row writes in turn
//          (with requestIds: each with its own `meta.requestId`, the exactly-once path, even on the primary);
//          then { type: 'done', id, summary } (latencies, acknowledged, error codes, start and end)
//        { cmd: 'close', id } → closes the coordinator, { type: 'closed', id }, exits
//   out: { type: 'ready', role } once attached
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { openRows, rowSchema } from './rows.mjs';
import { silentObserver } from './silent-observer.mjs';

const require = createRequire(import.meta.url);
const { Coordinator } = require(process.env.WC_LIB);

const send = (message) => process.connected && process.send(message);
/** Milliseconds on a clock every process of the host shares (the parent compares them). */
const now = () => performance.timeOrigin + performance.now();
const Row = rowSchema();
const INDEX = Number(process.env.INDEX ?? 0);

const dataSource = await openRows(process.env.DATABASE, { synchronize: false });
const cluster = process.env.CLUSTER ? JSON.parse(process.env.CLUSTER) : undefined;
const coordinator = new Coordinator(
  { synchronous: process.env.SYNCHRONOUS ?? 'FULL', queueSize: 1024, ...(cluster ? { cluster } : {}) },
  {
    events: silentObserver,
    log: {
      log: () => undefined,
      warn: () => undefined,
      error: (m, e) => console.error(`[${process.pid}]`, m, e ?? ''),
    },
  },
);
coordinator.handle('insert', async ({ v }, manager) => {
  await manager.insert(Row, { v });
  return v;
});
await coordinator.attach(dataSource);
send({ type: 'ready', role: coordinator.metrics().cluster?.role ?? 'alone' });

let nextValue = INDEX * 100_000_000;

/** `callers` concurrent callers, each awaiting `jobs` writes in turn; latencies in ms, per job. */
async function load(callers, jobs, withRequestIds) {
  const latencies = [];
  const errors = {};
  let acknowledged = 0;
  const caller = async () => {
    for (let k = 0; k < jobs; k++) {
      const v = nextValue++;
      const started = performance.now();
      try {
        await coordinator.submit(
          withRequestIds
            ? { method: 'insert', params: { v }, meta: { requestId: randomUUID() } }
            : { method: 'insert', params: { v } },
        );
        latencies.push(performance.now() - started);
        acknowledged++;
      } catch (error) {
        const code = error?.code ?? error?.name ?? 'unknown';
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  };
  const startedAt = now();
  await Promise.all(Array.from({ length: callers }, caller));
  const endedAt = now();
  return { pid: process.pid, startedAt, endedAt, acknowledged, errors, latencies };
}

process.on('message', async (message) => {
  switch (message.cmd) {
    case 'metrics':
      return send({
        type: 'metrics',
        id: message.id,
        metrics: coordinator.metrics(),
        cpuUs: ((usage) => usage.user + usage.system)(process.cpuUsage()),
      });
    case 'cpu':
      return send({ type: 'cpu', id: message.id, cpuUs: ((usage) => usage.user + usage.system)(process.cpuUsage()) });
    case 'go': {
      const wait = message.startAt - now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const summary = await load(message.callers, message.jobs, message.requestIds === true);
      return send({ type: 'done', id: message.id, summary });
    }
    case 'close':
      await coordinator.close();
      await dataSource.destroy();
      send({ type: 'closed', id: message.id });
      process.disconnect();
      return;
  }
});
