/**
 * Randomised database-level test of the coordinator (issue 9, "What must be shown").
 *
 * Each seed draws a scenario (`fixtures/fuzz/fuzz-plan.ts`): a real Nest app on a real SQLite file,
 * coordinator settings (maxBatchSize 1 or 64, readIsolation on/off, shutdownGraceMs 0/300), and a
 * schedule of concurrent top-level operations launched at random offsets:
 * - jobs: `coordinator.run()`, `coordinator.submit()` to a `@WriteHandler`, `@SerializedWrite`
 *   methods (one with a static `timeoutMs`), whose bodies insert rows, sleep, and may throw;
 * - re-entrant calls inside jobs (run / transaction / decorated method / submit), nested, some
 *   throwing and caught, some raced against same-level writes (`Promise.all([reentrant(), repo.save(x)])`);
 * - transparent writes outside jobs: repo.insert/save, manager.insert, QueryBuilder insert,
 *   `dataSource.query('INSERT …')`, `WITH … INSERT`, `dataSource.transaction()`;
 * - raw transaction statements inside jobs (`manager.query('COMMIT')`, ROLLBACK, BEGIN, END,
 *   SAVEPOINT, RELEASE), always caught by the job;
 * - AbortSignals (aborted before submission, while waiting, while running) and deadlines, slow
 *   work (30–400 ms), and at most one fast job with a deadline submitted together with a 2.5 s job;
 * - app.close() while work is in flight, work that never settles, and writes issued from another
 *   provider's onApplicationShutdown hook.
 *
 * Every write inserts one row with a unique tag (`fuzz_rows.tag`, deliberately not a unique
 * column) and a fresh UUID id. Expectations (the oracle, `fixtures/fuzz/fuzz-oracle.ts`):
 * - A write is PRESENT EXACTLY ONCE when its own promise resolved and every level enclosing it
 *   resolved: the re-entrant calls it was made in, up to the top-level operation (the promise
 *   of run()/submit()/the decorated method/dataSource.transaction(), or the write's own promise
 *   for a write outside jobs). A resolved write inside a re-entrant call that threw was rolled
 *   back with that call's savepoint; a job's own writes are committed only if the job resolved.
 * - A write is ABSENT when its own promise or any enclosing level's promise was rejected
 *   (whatever the reason: its own error, a caught re-entrant failure, TIMEOUT, CANCELLED,
 *   SHUTDOWN, a failed COMMIT). In particular a same-level write of a job is NOT enclosed by a
 *   sibling re-entrant call, even if it ran while that call's savepoint was open.
 * - Unknown (only "at most once" is checked) when some promise of the chain is still pending,
 *   which is itself reported.
 * - No row whose tag no write issued.
 * - Every top-level promise has settled once app.close() resolved (raced against a short timer).
 * - A raw transaction statement inside a job is refused (its promise rejects).
 * - Change events: an `inserted` FuzzRow change is published only for a committed row, once.
 * - A caller with a deadline is answered no later than deadline + FUZZ_DEADLINE_SLACK_MS
 *   (default 1500 ms; the slack absorbs a busy machine, the 2.5 s job exceeds it).
 * - A job whose own work threw before its deadline, its abort and app.close() is rejected with
 *   that error (the same object; for submit() as the coded error's `cause`).
 * - Metrics balance (`accepted = completed + failed + cancelled + timedOut + dropped +
 *   queueDepth + running`) at every launch and at the end; `PRAGMA integrity_check` is `ok`.
 *
 * Environment:
 * - FUZZ_SEED=n replays one seed; FUZZ_SEEDS=n runs seeds 1..n (default 4, heavy 40);
 * - FUZZ_FAMILIES=reentrant,outside,… switches families on (default all; see FAMILIES; `none`
 *   leaves plain jobs only);
 * - RELIABILITY_HEAVY=1: more seeds, longer schedules;
 * - FUZZ_DEADLINE_SLACK_MS: see above;
 * - FUZZ_LINGER_MS=n waits that long after app.close() before checking (default 50);
 * - FUZZ_OPS=0,7 launches only those ops of the scenario (to shrink a failure by hand);
 * - FUZZ_BATCH=1|64, FUZZ_READ_ISOLATION=on|off, FUZZ_GRACE_MS=n override the drawn settings.
 */
import Database from 'better-sqlite3';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { getRepositoryToken, TypeOrmModule } from '@nestjs/typeorm';
import type { DataSource, Repository } from 'typeorm';
import { EntityChange, WriteChange, WriteCoordinator, WriteCoordinatorEvents } from '@app/write-coordinator';
import { Item } from './fixtures/item.entity';
import { Tag } from './fixtures/tag.entity';
import { tempDir } from './fixtures/temp-sqlite';
import { createTestingApp } from './fixtures/testing-app';
import { FuzzRow } from './fixtures/fuzz/fuzz-row.entity';
import { FAMILIES, Family, generateScenario, PlanSize, Scenario } from './fixtures/fuzz/fuzz-plan';
import { FuzzRuntime } from './fixtures/fuzz/fuzz-runtime';
import { FuzzTelemetryModule, FuzzWorkload } from './fixtures/fuzz/fuzz-workload';
import {
  checkBalance,
  checkDeadlines,
  checkOwnErrors,
  checkPublished,
  checkRawTx,
  checkSettled,
  checkWrites,
  DatabaseState,
  reportTimesFrom,
} from './fixtures/fuzz/fuzz-oracle';

const HEAVY = Boolean(process.env.RELIABILITY_HEAVY);
const SIZE: PlanSize = HEAVY ? { ops: 120, spanMs: 800 } : { ops: 40, spanMs: 300 };
const SLACK_MS = Number(process.env.FUZZ_DEADLINE_SLACK_MS ?? 1_500);
/** Without a mid-run close: how long the work may take to settle before app.close() is called anyway. */
const SETTLE_CAP_MS = 2_500;
/** app.close() that has not resolved by then is a finding of its own. */
const CLOSE_CAP_MS = 20_000;

function selectedFamilies(): Family[] {
  const raw = process.env.FUZZ_FAMILIES;
  if (raw === undefined || raw.trim() === '' || raw === 'all') return [...FAMILIES];
  if (raw === 'none') return [];
  const names = raw.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !(FAMILIES as readonly string[]).includes(n));
  if (unknown.length > 0)
    throw new Error(`FUZZ_FAMILIES: unknown ${unknown.join(', ')} (known: ${FAMILIES.join(', ')})`);
  return names as Family[];
}

function selectedSeeds(): number[] {
  if (process.env.FUZZ_SEED) return [Number(process.env.FUZZ_SEED)];
  const n = Number(process.env.FUZZ_SEEDS ?? (HEAVY ? 40 : 4));
  return Array.from({ length: n }, (_, i) => i + 1);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** Waits until `t`; returns at once (same tick) when it has passed, so ops due together launch together. */
const until = async (t: number) => {
  if (t > performance.now()) await sleep(t - performance.now());
};

/** `promise`'s value, or `'timeout'` after `ms`; the timer never outlives the race. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<'timeout'>((resolve) => (timer = setTimeout(resolve, ms, 'timeout'))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function readDatabase(file: string): DatabaseState {
  const db = new Database(file, { readonly: true });
  try {
    const rows = db.prepare('SELECT id, tag FROM fuzz_rows').all() as Array<{ id: string; tag: string }>;
    const rowsByTag = new Map<string, number>();
    for (const r of rows) rowsByTag.set(r.tag, (rowsByTag.get(r.tag) ?? 0) + 1);
    const integrity = (db.pragma('integrity_check') as Array<{ integrity_check: string }>)
      .map((r) => r.integrity_check)
      .join('; ');
    return { rowsByTag, ids: new Set(rows.map((r) => r.id)), integrity };
  } finally {
    db.close();
  }
}

interface ScenarioResult {
  violations: string[];
  summary: string;
}

async function runScenario(s: Scenario): Promise<ScenarioResult> {
  const tmp = tempDir('wc-fuzz-');
  const database = tmp.file('fuzz.db');
  const violations: string[] = [];
  const started = performance.now();
  try {
    const app = await createTestingApp({
      database,
      coordinator: { maxBatchSize: s.maxBatchSize, readIsolation: s.readIsolation, shutdownGraceMs: s.shutdownGraceMs },
      providers: [FuzzWorkload],
      imports: [TypeOrmModule.forFeature([FuzzRow]), FuzzTelemetryModule as never],
      typeorm: { entities: [Item, Tag, FuzzRow] },
    });
    const coordinator = app.get(WriteCoordinator);
    const rt = new FuzzRuntime(
      coordinator,
      coordinator.dataSource as DataSource,
      app.get<Repository<FuzzRow>>(getRepositoryToken(FuzzRow)),
      app.get(FuzzWorkload),
    );
    rt.shutdownHookWrites = s.shutdownHookWrites;
    FuzzRuntime.current = rt;
    app.get(EventEmitter2).on(WriteCoordinatorEvents.Change, (change: WriteChange) => {
      const c = change as EntityChange;
      if (c.kind === 'entity' && c.entity === 'FuzzRow' && c.operation === 'inserted' && c.ids) {
        rt.published.push(String(c.ids.id));
      }
    });

    let closing: Promise<unknown> | undefined;
    const close = () => {
      rt.closeStartedAt = performance.now();
      closing = app.close().then(
        () => (rt.closeEndedAt = performance.now()),
        (error: unknown) => violations.push(`CLOSE-FAILED app.close() rejected: ${String(error)}`),
      );
    };
    const t0 = performance.now();
    rt.t0 = t0;
    reportTimesFrom(t0);
    const only = process.env.FUZZ_OPS?.split(',').map(Number);
    for (const [i, { at, op }] of s.ops.entries()) {
      if (only && !only.includes(i)) continue;
      if (s.closeAt !== undefined && !closing && at >= s.closeAt) {
        await until(t0 + s.closeAt);
        close();
      }
      await until(t0 + at);
      rt.launch(op, i);
      if (!closing) violations.push(...checkBalance(coordinator.metrics(), `at launch of op#${i}`));
    }
    if (s.closeAt !== undefined && !closing) {
      await until(t0 + s.closeAt);
      close();
    }
    if (!closing) {
      await within(Promise.allSettled(rt.tops.map((l) => l.promise)), SETTLE_CAP_MS);
      violations.push(...checkBalance(coordinator.metrics(), 'before app.close()'));
      close();
    }
    const closed = await within(closing!, CLOSE_CAP_MS);
    if (closed === 'timeout') violations.push(`CLOSE-HANGS app.close() had not resolved after ${CLOSE_CAP_MS} ms`);
    // Let settlements already due reach their callbacks; anything still pending then is a finding.
    await sleep(Number(process.env.FUZZ_LINGER_MS ?? 50));
    const end = performance.now();
    rt.dispose();
    const tops = rt.tops;
    const db = readDatabase(database);
    violations.push(
      ...checkSettled(tops),
      ...checkWrites(rt.writes, db),
      ...checkRawTx(rt.rawTx),
      ...checkPublished(rt.published, rt.writes, db),
      ...checkDeadlines(tops, SLACK_MS, end),
      ...checkOwnErrors(tops, rt.closeStartedAt, 20),
      ...checkBalance(coordinator.metrics(), 'after app.close()'),
    );
    if (db.integrity !== 'ok') violations.push(`INTEGRITY ${db.integrity}`);
    const count = (o: string) => tops.filter((l) => l.outcome === o).length;
    const m = coordinator.metrics();
    const hook = tops
      .filter((l) => l.what.startsWith('shutdown-hook'))
      .map(
        (l) =>
          `${l.what.replace('shutdown-hook:', '')} ${l.outcome}${l.outcome === 'rejected' ? ` ${(l.error as { code?: string }).code ?? (l.error as Error).name}` : ''}`,
      );
    const summary =
      `seed ${s.seed}: ${tops.length} ops (${count('resolved')} resolved, ${count('rejected')} rejected, ` +
      `${count('pending')} pending), ${rt.writes.length} writes, ${[...db.rowsByTag.values()].reduce((a, b) => a + b, 0)} rows, ` +
      `${m.batches.committed} commits (largest batch ${m.batches.largest}); ` +
      `maxBatchSize ${s.maxBatchSize}, readIsolation ${s.readIsolation}, grace ${s.shutdownGraceMs} ms, ` +
      `close ${s.closeAt === undefined ? 'after the work' : `at ${s.closeAt} ms`} ` +
      `(began ${Math.round((rt.closeStartedAt ?? t0) - t0)} ms, resolved ${rt.closeEndedAt === undefined ? 'never' : `${Math.round(rt.closeEndedAt - t0)} ms`}), ` +
      `hook writes ${s.shutdownHookWrites ? `[${hook.join(', ')}]` : 'off'}, ${tops.filter((l) => l.stalled).length} stalled; ` +
      `${Math.round(performance.now() - started)} ms`;
    return { violations, summary };
  } finally {
    FuzzRuntime.current = undefined;
    tmp.cleanup();
  }
}

describe('random workload (database-level oracle)', () => {
  const families = selectedFamilies();
  const seeds = selectedSeeds();
  jest.setTimeout(60_000);

  it.each(seeds)('seed %i: acknowledged writes present once, rejected absent, nobody pending', async (seed) => {
    const scenario = generateScenario(seed, families, SIZE);
    if (process.env.FUZZ_BATCH) scenario.maxBatchSize = Number(process.env.FUZZ_BATCH);
    if (process.env.FUZZ_READ_ISOLATION) scenario.readIsolation = process.env.FUZZ_READ_ISOLATION === 'on';
    if (process.env.FUZZ_GRACE_MS) scenario.shutdownGraceMs = Number(process.env.FUZZ_GRACE_MS);
    const { violations, summary } = await runScenario(scenario);
    console.log(summary);
    if (violations.length > 0) {
      const replay = `FUZZ_SEED=${seed} FUZZ_FAMILIES=${families.join(',') || 'none'}${HEAVY ? ' RELIABILITY_HEAVY=1' : ''}`;
      throw new Error(
        `${violations.length} violation(s); replay with ${replay} npx jest test/random-workload --runInBand\n` +
          `${summary}\n- ${violations.join('\n- ')}`,
      );
    }
  });
});
