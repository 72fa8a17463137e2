import { Counter, Gauge, Registry } from 'prom-client';
import type { CoordinatorObserver, InstrumentedCoordinator } from '../../core/instrumentation';
import type { CoordinatorMetrics } from '../../core/coordinator';
import { codeOf, UNCODED } from '../error-code';
import { RecordedHistogram } from './recorded-histogram';

/** Upper bounds (s) of the queue wait, run time and commit time histograms: 0.5 ms to 10 s. */
const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Upper bounds of the batch size histogram (jobs per committed transaction). */
const JOBS = [1, 2, 4, 8, 16, 32, 64, 128, 256];

/** Counters read from `metrics()` at scrape time: field of the snapshot, metric name, help. */
const SNAPSHOT_COUNTERS = [
  ['accepted', 'jobs_accepted_total', 'Jobs that entered the queue.'],
  ['completed', 'jobs_completed_total', 'Jobs whose transaction committed.'],
  ['cancelled', 'jobs_cancelled_total', 'Accepted jobs cancelled by their signal (never committed).'],
  ['timedOut', 'jobs_timed_out_total', 'Accepted jobs that passed their deadline (never committed).'],
  ['dropped', 'jobs_dropped_total', 'Queued jobs rejected by shutdown(); they never ran.'],
] as const satisfies ReadonlyArray<readonly [keyof CoordinatorMetrics, string, string]>;

type SnapshotCounter = (typeof SNAPSHOT_COUNTERS)[number][0];

/** Gauges set from `metrics()` at scrape time. */
const GAUGES = {
  queueDepth: ['queue_depth', 'Jobs waiting in the queue now.'],
  queueCapacity: ['queue_capacity', 'Capacity of the queue (the queueSize option).'],
  running: ['running', 'Jobs running now (more than 1 while a group-commit batch runs).'],
  waitingForRoom: ['waiting_for_room', "Submitters blocked by a full queue (whenFull: 'wait'), not yet accepted."],
  oldestWait: ['oldest_wait_seconds', 'How long the oldest waiting job (or blocked submitter) has waited.'],
  storageFailing: ['storage_failing', '1 while the database refuses writes (disk full, I/O error) until a commit.'],
} as const;

/** One coordinator followed by a {@link PrometheusMetricSet}. */
interface Tracked {
  /** Weakly held: a coordinator dropped by its app is not kept alive by the registry. */
  readonly coordinator: WeakRef<InstrumentedCoordinator>;
  readonly name: string;
  /** The snapshot counters as last added to the Prometheus counters. */
  readonly seen: Record<SnapshotCounter, number>;
  /** Failures and refusals by code since the last scrape (counted per event: `metrics()` has no codes). */
  readonly failed: Map<string, number>;
  readonly rejected: Map<string, number>;
}

/**
 * @internal The metrics of every coordinator instrumented on one registry (with one prefix).
 * Counters and gauges are brought up to date from each coordinator's `metrics()` once per scrape
 * (the first collect callback of a scrape does it for all, so one scrape shows one moment); per
 * job, the observer only records into plain bucket counts and per-code tallies.
 */
export class PrometheusMetricSet {
  private readonly tracked = new Set<Tracked>();
  private readonly counters: Record<SnapshotCounter, Counter<'coordinator'>>;
  private readonly failedByCode: Counter<'coordinator' | 'code'>;
  private readonly rejectedByCode: Counter<'coordinator' | 'code'>;
  private readonly gauges: Record<keyof typeof GAUGES, Gauge<'coordinator'>>;
  private readonly role: Gauge<'coordinator' | 'role'>;
  private readonly queueWait: RecordedHistogram;
  private readonly runTime: RecordedHistogram;
  private readonly commitTime: RecordedHistogram;
  private readonly batchSize: RecordedHistogram;
  /** True from the first collect callback of a scrape to the end of its synchronous run. */
  private refreshed = false;

  constructor(
    readonly registry: Registry,
    readonly prefix: string,
  ) {
    const collect = () => this.refresh();
    const registers = [registry];
    const counter = <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name: prefix + name, help, labelNames, registers, collect });
    this.counters = Object.fromEntries(
      SNAPSHOT_COUNTERS.map(([field, name, help]) => [field, counter(name, help, ['coordinator'])]),
    ) as Record<SnapshotCounter, Counter<'coordinator'>>;
    this.failedByCode = counter(
      'jobs_failed_total',
      `Accepted jobs whose work or transaction failed (rolled back), by error code (${UNCODED}: not a coordinator error).`,
      ['coordinator', 'code'],
    );
    this.rejectedByCode = counter(
      'jobs_rejected_total',
      'Submissions refused before they entered the queue, by error code.',
      ['coordinator', 'code'],
    );
    this.gauges = Object.fromEntries(
      Object.entries(GAUGES).map(([key, [name, help]]) => [
        key,
        new Gauge({ name: prefix + name, help, labelNames: ['coordinator'], registers, collect }),
      ]),
    ) as Record<keyof typeof GAUGES, Gauge<'coordinator'>>;
    this.role = new Gauge({
      name: `${prefix}role`,
      help: 'Role of this process for the coordinator: 1 on the role it has (primary for a single process).',
      labelNames: ['coordinator', 'role'],
      registers,
      collect,
    });
    this.queueWait = new RecordedHistogram(
      `${prefix}queue_wait_seconds`,
      'Time from submission to start, per committed job.',
      SECONDS,
      registry,
    );
    this.runTime = new RecordedHistogram(
      `${prefix}run_seconds`,
      'Time from start to commit, per committed job (a batch member: until its batch committed).',
      SECONDS,
      registry,
    );
    this.commitTime = new RecordedHistogram(`${prefix}commit_seconds`, 'Duration of each COMMIT.', SECONDS, registry);
    this.batchSize = new RecordedHistogram(
      `${prefix}batch_size`,
      'Jobs per committed transaction (group commit).',
      JOBS,
      registry,
    );
  }

  /** True while this set's metrics are still the ones registered (a `registry.clear()` removes them). */
  get isRegistered(): boolean {
    return this.registry.getSingleMetric(`${this.prefix}queue_wait_seconds`) === this.queueWait;
  }

  /** Follows a coordinator from now on; returns the observer it reports to. */
  track(coordinator: InstrumentedCoordinator): CoordinatorObserver {
    const entry: Tracked = {
      coordinator: new WeakRef(coordinator),
      name: coordinator.name,
      seen: { accepted: 0, completed: 0, cancelled: 0, timedOut: 0, dropped: 0 },
      failed: new Map(),
      rejected: new Map(),
    };
    this.tracked.add(entry);
    const name = coordinator.name;
    const wait = this.queueWait.recorder(name);
    const run = this.runTime.recorder(name);
    const commit = this.commitTime.recorder(name);
    const batch = this.batchSize.recorder(name);
    return {
      // One event per committed job on the drain's hot path: its wait and its run time together.
      jobCompleted: (_job, waitMs, runMs) => {
        wait.record(waitMs / 1000);
        run.record(runMs / 1000);
      },
      jobFailed: (_job, error, ending) => {
        if (ending === 'failed') tally(entry.failed, codeOf(error));
      },
      jobRejected: (_job, error) => tally(entry.rejected, codeOf(error)),
      batchCommitted: (size, commitMs) => {
        commit.record(commitMs / 1000);
        batch.record(size);
      },
    };
  }

  /**
   * Brings counters and gauges up to date from every coordinator's `metrics()`, once per scrape.
   * A coordinator found stopped with nothing running is counted one last time and no longer
   * followed (a job still running after `shutdown()` is counted when it settles).
   */
  private refresh(): void {
    if (this.refreshed) return;
    this.refreshed = true;
    queueMicrotask(() => (this.refreshed = false));
    for (const gauge of Object.values(this.gauges)) gauge.reset();
    this.role.reset();
    for (const entry of this.tracked) {
      const { name } = entry;
      const coordinator = entry.coordinator.deref();
      if (coordinator === undefined) {
        this.tracked.delete(entry); // collected: its app let it go
        continue;
      }
      const snapshot = coordinator.metrics();
      for (const [field] of SNAPSHOT_COUNTERS) {
        // Adding 0 still creates the series, so a counter is visible before its first event.
        this.counters[field].inc({ coordinator: name }, snapshot[field] - entry.seen[field]);
        entry.seen[field] = snapshot[field];
      }
      flush(entry.failed, this.failedByCode, name);
      flush(entry.rejected, this.rejectedByCode, name);
      if (snapshot.state === 'stopped' && snapshot.running === 0) {
        this.tracked.delete(entry);
        continue;
      }
      const { gauges } = this;
      const labels = { coordinator: name };
      gauges.queueDepth.inc(labels, snapshot.queueDepth);
      gauges.queueCapacity.inc(labels, snapshot.maxQueue);
      gauges.running.inc(labels, snapshot.running);
      gauges.waitingForRoom.inc(labels, snapshot.waitingForRoom);
      gauges.oldestWait.inc(labels, snapshot.oldestWaitMs / 1000);
      gauges.storageFailing.inc(labels, snapshot.storage.failing ? 1 : 0);
      this.role.set({ coordinator: name, role: roleOf(snapshot) }, 1);
    }
  }
}

function tally(counts: Map<string, number>, code: string): void {
  counts.set(code, (counts.get(code) ?? 0) + 1);
}

function flush(counts: Map<string, number>, counter: Counter<'coordinator' | 'code'>, coordinator: string): void {
  for (const [code, count] of counts) counter.inc({ coordinator, code }, count);
  counts.clear();
}

/** The coordinator's role: `metrics().cluster.role` once several processes share a database, else primary. */
function roleOf(snapshot: CoordinatorMetrics): string {
  return (snapshot as { cluster?: { role?: string } }).cluster?.role ?? 'primary';
}

/** Shared by every exporter on a registry: prom-client refuses two metrics of one name. */
const sets = new WeakMap<Registry, Map<string, PrometheusMetricSet>>();

/** @internal The metric set of `registry` and `prefix`, created (and registered) on first use. */
export function metricSetOf(registry: Registry, prefix: string): PrometheusMetricSet {
  let byPrefix = sets.get(registry);
  if (byPrefix === undefined) sets.set(registry, (byPrefix = new Map()));
  let set = byPrefix.get(prefix);
  if (set === undefined || !set.isRegistered) byPrefix.set(prefix, (set = new PrometheusMetricSet(registry, prefix)));
  return set;
}
