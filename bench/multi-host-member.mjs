// One "host" of bench/multi-host.mjs, forked by it with the LiteFS stand-in's environment of its
// node (the preload agent that refuses writes on a replica and keeps `-pos`): a plain (Nest-free)
// Coordinator with `cluster: { primary: { strategy: 'litefs' }, secret, http }` on the node's
// database file, whose in-process callers submit one-row writes (`submit({ method: 'insert',
// params: { v }, meta: { requestId } })`, the handler a TypeORM insert) when the parent says go.
// Everything is measured here, in the caller, and sent back as a summary.
//   env: WC_LIB (compiled core entry), DATABASE, CLUSTER (JSON of the cluster option, without `http`),
//        HOSTNAME + HOST_PORTS (JSON { hostname: port }): forwarding listens on 127.0.0.1:HOST_PORTS[HOSTNAME]
//        and reaches a primary named h at http://127.0.0.1:HOST_PORTS[h]/_write-coordinator,
//        INDEX (this member's number, for unique values)
//   in:  { cmd: 'metrics', id } → { type: 'metrics', id, metrics }
//        { cmd: 'go', id, callers, jobs, startAt } → at `startAt` (ms, performance.timeOrigin + performance.now()),
//          `callers` concurrent callers each await `jobs` one-row writes in turn, each with its own request
//          id; after each answer (outside the measured time) a read here checks whether the row is visible;
//          then { type: 'done', id, summary } (latencies, acknowledged, unseen, error codes, start and end)
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
/** Milliseconds on a clock every process of the machine shares (the parent compares them). */
const now = () => performance.timeOrigin + performance.now();
const Row = rowSchema();
const INDEX = Number(process.env.INDEX ?? 0);
const PORTS = JSON.parse(process.env.HOST_PORTS);
const cluster = JSON.parse(process.env.CLUSTER);
const path = '/_write-coordinator';

const dataSource = await openRows(process.env.DATABASE, { synchronize: false });
const coordinator = new Coordinator(
  {
    synchronous: 'FULL',
    queueSize: 1024,
    cluster: {
      ...cluster,
      http: {
        host: '127.0.0.1',
        port: PORTS[process.env.HOSTNAME],
        path,
        url: (hostname) => `http://127.0.0.1:${PORTS[hostname]}${path}`,
      },
    },
  },
  {
    events: silentObserver,
    log: {
      log: () => undefined,
      warn: () => undefined,
      error: (m, e) => console.error(`[${process.env.HOSTNAME}]`, m, e ?? ''),
    },
  },
);
coordinator.handle('insert', async ({ v }, manager) => {
  const { identifiers } = await manager.insert(Row, { v });
  return identifiers[0].id;
});
await coordinator.attach(dataSource);
send({ type: 'ready', role: coordinator.metrics().cluster.role });

let nextValue = INDEX * 100_000_000;

/** Whether a read on this host, now, sees the row `id` (read-your-writes, checked outside the timing). */
async function seenHere(id) {
  const rows = await dataSource.query('SELECT COUNT(*) AS n FROM rows WHERE id = ?', [id]);
  return Number(rows[0].n) === 1;
}

/** `callers` concurrent callers, each awaiting `jobs` writes in turn; latencies in ms, per job. */
async function load(callers, jobs) {
  const latencies = [];
  const errors = {};
  let acknowledged = 0;
  let unseen = 0;
  let endedAt = 0;
  const caller = async () => {
    for (let k = 0; k < jobs; k++) {
      const v = nextValue++;
      const started = performance.now();
      try {
        const id = await coordinator.submit({ method: 'insert', params: { v }, meta: { requestId: randomUUID() } });
        latencies.push(performance.now() - started);
        endedAt = now();
        acknowledged++;
        if (!(await seenHere(id))) unseen++;
      } catch (error) {
        const code = error?.code ?? error?.name ?? 'unknown';
        errors[code] = (errors[code] ?? 0) + 1;
      }
    }
  };
  const startedAt = now();
  await Promise.all(Array.from({ length: callers }, caller));
  return { host: process.env.HOSTNAME, startedAt, endedAt, acknowledged, unseen, errors, latencies };
}

process.on('message', async (message) => {
  switch (message.cmd) {
    case 'metrics':
      return send({ type: 'metrics', id: message.id, metrics: coordinator.metrics() });
    case 'go': {
      const wait = message.startAt - now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      const summary = await load(message.callers, message.jobs);
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
