import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { CoordinatorMetrics, WriteCoordinator, WriteCoordinatorError } from '@app/write-coordinator';
import { createDemoApp } from './fixtures/demo-app';
import { deferred } from './fixtures/deferred';
import { Family, parsePrometheusText, sumOf, valueOf } from './fixtures/prometheus-text';
import { tempDir } from './fixtures/temp-sqlite';

const P = 'write_coordinator_';
const FAMILIES: Record<string, Family['type']> = {
  [`${P}jobs_accepted_total`]: 'counter',
  [`${P}jobs_completed_total`]: 'counter',
  [`${P}jobs_failed_total`]: 'counter',
  [`${P}jobs_rejected_total`]: 'counter',
  [`${P}jobs_cancelled_total`]: 'counter',
  [`${P}jobs_timed_out_total`]: 'counter',
  [`${P}jobs_dropped_total`]: 'counter',
  [`${P}queue_depth`]: 'gauge',
  [`${P}queue_capacity`]: 'gauge',
  [`${P}running`]: 'gauge',
  [`${P}waiting_for_room`]: 'gauge',
  [`${P}oldest_wait_seconds`]: 'gauge',
  [`${P}storage_failing`]: 'gauge',
  [`${P}role`]: 'gauge',
  [`${P}queue_wait_seconds`]: 'histogram',
  [`${P}run_seconds`]: 'histogram',
  [`${P}commit_seconds`]: 'histogram',
  [`${P}batch_size`]: 'histogram',
};
const QUEUE_SIZE = 16;
const coordinator = { coordinator: 'default' };

/** What the counters and gauges of one scrape say, in `metrics()` terms. */
function countersOf(families: Map<string, Family>) {
  const v = (name: string) => valueOf(families, P + name, coordinator);
  return {
    accepted: v('jobs_accepted_total'),
    completed: v('jobs_completed_total'),
    failed: sumOf(families, `${P}jobs_failed_total`, coordinator),
    rejected: sumOf(families, `${P}jobs_rejected_total`, coordinator),
    cancelled: v('jobs_cancelled_total'),
    timedOut: v('jobs_timed_out_total'),
    dropped: v('jobs_dropped_total'),
    queueDepth: v('queue_depth'),
    running: v('running'),
    waitingForRoom: v('waiting_for_room'),
  };
}

/** `accepted = completed + failed + cancelled + timedOut + dropped + queueDepth + running` (API.md). */
function balance(m: Omit<ReturnType<typeof countersOf>, 'rejected' | 'waitingForRoom'>): number {
  return m.accepted - (m.completed + m.failed + m.cancelled + m.timedOut + m.dropped + m.queueDepth + m.running);
}

describe('GET /metrics/prometheus (WriteCoordinatorPrometheus in the demo)', () => {
  let tmp: ReturnType<typeof tempDir>;
  let app: INestApplication;
  const http = () => request(app.getHttpServer());
  const scrape = async () => {
    const res = await http().get('/metrics/prometheus').expect(200);
    expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    return parsePrometheusText(res.text);
  };

  beforeEach(async () => {
    tmp = tempDir();
    app = await createDemoApp(tmp.file('ledger.db'), { writeTimeoutMs: 30_000, writeQueueSize: QUEUE_SIZE });
  });
  afterEach(async () => {
    await app.close();
    tmp.cleanup();
  });

  it('serves every family with its type, each series labelled by coordinator, counters at 0 before any job', async () => {
    const families = await scrape();
    expect(Object.fromEntries([...families.values()].map((f) => [f.name, f.type]))).toEqual(FAMILIES);
    for (const family of families.values()) {
      for (const sample of family.samples) expect(sample.labels.coordinator).toBe('default');
    }
    expect(countersOf(families)).toEqual({
      accepted: 0,
      completed: 0,
      failed: 0,
      rejected: 0,
      cancelled: 0,
      timedOut: 0,
      dropped: 0,
      queueDepth: 0,
      running: 0,
      waitingForRoom: 0,
    });
    expect(valueOf(families, `${P}queue_capacity`, coordinator)).toBe(QUEUE_SIZE);
    expect(valueOf(families, `${P}role`, { ...coordinator, role: 'primary' })).toBe(1);
    expect(valueOf(families, `${P}storage_failing`, coordinator)).toBe(0);
  });

  it('under HTTP load, every scrape balances and the final one matches metrics() exactly, code by code', async () => {
    const writes = app.get(WriteCoordinator);
    const ids: number[] = [];
    for (let i = 0; i < 8; i++) {
      ids.push(
        (
          await http()
            .post('/accounts')
            .send({ name: `acc-${i}`, initialBalance: 100 })
            .expect(201)
        ).body.id,
      );
    }

    // Held drain: one job cancelled and one timed out while queued, one refused (signal already
    // aborted), five that the held job takes into its batch once released (group commit).
    const gate = deferred();
    const holder = writes.run(() => gate.promise);
    const batched = Array.from({ length: 5 }, () => writes.run(() => undefined));
    const aborter = new AbortController();
    const codeOf = (job: Promise<unknown>) => job.then(String, (e: WriteCoordinatorError) => e.code);
    const cancelled = codeOf(writes.run(() => undefined, { signal: aborter.signal }));
    const timedOut = codeOf(writes.run(() => undefined, { timeoutMs: 1 }));
    const refused = codeOf(writes.run(() => undefined, { signal: AbortSignal.abort() }));
    aborter.abort();
    expect([await cancelled, await timedOut, await refused]).toEqual(['CANCELLED', 'TIMEOUT', 'CANCELLED']);
    gate.resolve();
    await Promise.all([holder, ...batched]);

    // 240 transfers from 8 accounts of 100: the large ones run out of funds (409 CONFLICT, rolled back);
    // more callers than the queue holds, so some wait for room. Scrapes run in between.
    const transfers = Array.from({ length: 240 }, (_, i) =>
      http()
        .post('/transfers')
        .send({ fromId: ids[i % 8], toId: ids[(i + 1 + (i % 7)) % 8], amount: 1 + (i % 40) }),
    );
    const scrapes = Array.from({ length: 6 }, () => scrape());
    const failing = [
      writes.run(() => Promise.reject(new Error('work failed'))).catch(() => 'failed'),
      writes.submit({ method: 'noSuchMethod' }).catch((e: WriteCoordinatorError) => e.code),
    ];
    const statuses = (await Promise.all(transfers)).map((r) => r.status);
    expect(await Promise.all(failing)).toEqual(['failed', 'METHOD_NOT_FOUND']);
    for (const families of await Promise.all(scrapes)) expect(balance(countersOf(families))).toBe(0);

    await writes.onIdle();
    const families = await scrape();
    const m: CoordinatorMetrics = writes.metrics();
    const insufficient = statuses.filter((s) => s === 409).length;
    expect(statuses.filter((s) => s !== 201 && s !== 409)).toEqual([]);
    expect(insufficient).toBeGreaterThan(0);

    expect(countersOf(families)).toEqual({
      accepted: m.accepted,
      completed: m.completed,
      failed: m.failed,
      rejected: m.rejected,
      cancelled: m.cancelled,
      timedOut: m.timedOut,
      dropped: m.dropped,
      queueDepth: 0,
      running: 0,
      waitingForRoom: 0,
    });
    expect(m).toMatchObject({ cancelled: 1, timedOut: 1, rejected: 1, failed: insufficient + 2 });
    expect(valueOf(families, `${P}jobs_failed_total`, { ...coordinator, code: 'CONFLICT' })).toBe(insufficient);
    expect(valueOf(families, `${P}jobs_failed_total`, { ...coordinator, code: 'UNCODED' })).toBe(1);
    expect(valueOf(families, `${P}jobs_failed_total`, { ...coordinator, code: 'METHOD_NOT_FOUND' })).toBe(1);
    expect(valueOf(families, `${P}jobs_rejected_total`, { ...coordinator, code: 'CANCELLED' })).toBe(1);

    // Histograms: the wait and run time of every committed job; one observation per COMMIT.
    const count = (name: string) => valueOf(families, P + name, coordinator, '_count');
    const sum = (name: string) => valueOf(families, P + name, coordinator, '_sum');
    expect(count('queue_wait_seconds')).toBe(m.completed);
    expect(count('run_seconds')).toBe(m.completed);
    expect(count('commit_seconds')).toBe(m.batches.committed);
    expect(count('batch_size')).toBe(m.batches.committed);
    expect(sum('batch_size')).toBe(m.batches.jobs);
    expect(m.batches.largest).toBe(6); // the held job and the five queued behind it
    expect(valueOf(families, `${P}batch_size`, { ...coordinator, le: '1' }, '_bucket')).toBeLessThan(
      m.batches.committed,
    );
  });
});
