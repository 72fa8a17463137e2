#!/usr/bin/env node
// Fires many concurrent transfers at a running ledger demo and checks that money is conserved.
// Usage: npm run load -- [--url http://127.0.0.1:3000] [--transfers 2000] [--concurrency 64] [--accounts 20]
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';

const { values } = parseArgs({
  options: {
    url: { type: 'string', default: `http://127.0.0.1:${process.env.PORT ?? 3000}` },
    transfers: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '64' },
    accounts: { type: 'string', default: '20' },
    'initial-balance': { type: 'string', default: '100000' },
  },
});
const positive = (name) => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer (received '${values[name]}')`);
    process.exit(2);
  }
  return value;
};
const base = values.url.replace(/\/$/, '');
const transfers = positive('transfers');
const concurrency = positive('concurrency');
const accountCount = Math.max(2, positive('accounts'));
const initialBalance = positive('initial-balance');

async function call(method, path, body) {
  const res = await fetch(base + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : undefined,
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

async function main() {
  const health = await call('GET', '/health').catch((error) => {
    console.error(`cannot reach ${base}/health (${error.cause?.code ?? error.message}); start the demo with npm start`);
    process.exit(2);
  });
  if (health.status !== 200) console.warn(`warning: /health answered ${health.status}`);

  const run = Date.now().toString(36);
  const ids = [];
  for (let i = 0; i < accountCount; i++) {
    const res = await call('POST', '/accounts', { name: `load-${run}-${i}`, initialBalance });
    if (res.status !== 201) throw new Error(`opening an account failed: ${res.status} ${JSON.stringify(res.body)}`);
    ids.push(res.body.id);
  }
  const before = (await call('GET', '/totals')).body;

  const statuses = new Map();
  const latencies = [];
  const bar = new cliProgress.SingleBar(
    { format: 'transfers [{bar}] {value}/{total} | {rate} req/s | errors {errors}', hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(transfers, 0, { rate: 0, errors: 0 });
  const started = performance.now();
  let next = 0;
  let errors = 0;
  async function worker() {
    while (next < transfers) {
      next++;
      const fromId = ids[Math.floor(Math.random() * ids.length)];
      let toId = ids[Math.floor(Math.random() * ids.length)];
      if (toId === fromId) toId = ids[(ids.indexOf(fromId) + 1) % ids.length];
      const t0 = performance.now();
      const res = await call('POST', '/transfers', { fromId, toId, amount: 1 + Math.floor(Math.random() * 100) }).catch(
        () => ({ status: 0 }),
      );
      latencies.push(performance.now() - t0);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (res.status !== 201 && res.status !== 409) errors++;
      const seconds = (performance.now() - started) / 1000;
      bar.increment(1, { rate: Math.round(latencies.length / seconds), errors });
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  bar.stop();
  const seconds = (performance.now() - started) / 1000;
  const after = (await call('GET', '/totals')).body;
  latencies.sort((a, b) => a - b);
  const pct = (q) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)].toFixed(1);
  const committed = statuses.get(201) ?? 0;
  const recorded = after.transfers - before.transfers;
  const conserved = after.totalBalance === before.totalBalance && recorded === committed;

  console.log(`\n${transfers} transfers, ${concurrency} concurrent, ${accountCount} accounts against ${base}`);
  console.log(`throughput   ${(transfers / seconds).toFixed(0)} transfers/s over ${seconds.toFixed(2)} s`);
  console.log(`latency      p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms`);
  console.log(`statuses     ${[...statuses].map(([s, n]) => `${s === 0 ? 'network error' : s}: ${n}`).join(', ')}`);
  console.log(`errors       ${errors} (anything but 201 created / 409 insufficient funds)`);
  console.log(`balance      total before ${before.totalBalance}, after ${after.totalBalance}`);
  console.log(`transfers    ${committed} acknowledged, ${recorded} recorded`);
  console.log(`conserved    ${conserved ? 'yes' : 'NO'}`);
  process.exit(conserved && errors === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
