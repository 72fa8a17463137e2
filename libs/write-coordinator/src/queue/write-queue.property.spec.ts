import fc from 'fast-check';
import { WriteCoordinatorError } from '../errors';
import type { QueueMetrics, WhenFull } from './queue.types';
import { WriteQueue } from './write-queue';

/**
 * Property-based tests of the queue core: random interleavings of submissions (succeeding,
 * throwing and long-running jobs, with and without deadlines and abort signals), aborts, time
 * passing, releases of the running job, drain() and shutdown(), under both `whenFull` policies.
 * RELIABILITY_HEAVY=1 explores 20x more schedules.
 */
const RUNS = process.env.RELIABILITY_HEAVY ? 20_000 : 1_000;

type Behaviour = 'ok' | 'throw' | 'hold';
type Command =
  | { kind: 'submit'; behaviour: Behaviour; timeoutMs: number | undefined; abortable: boolean }
  | { kind: 'abort'; index: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'release'; fail: boolean }
  | { kind: 'drain' }
  | { kind: 'shutdown' };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('submit' as const),
      behaviour: fc.constantFrom<Behaviour>('ok', 'throw', 'hold'),
      timeoutMs: fc.option(fc.integer({ min: 1, max: 20 }), { nil: undefined }),
      abortable: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('abort' as const), index: fc.nat(15) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 10 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('release' as const), fail: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drain' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'shutdown' as const }) },
);

const settings = fc.record({
  capacity: fc.integer({ min: 1, max: 4 }),
  whenFull: fc.constantFrom<WhenFull>('wait', 'reject'),
  timeoutMs: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
  /** Group commit: after its own work, a running job takes the queued jobs behind it (takeNext). */
  batch: fc.boolean(),
});

/** One submitted job as the test sees it. */
interface Tracked {
  controller?: AbortController;
  /** Step (global sequence number) at which its work started; undefined if it never ran. */
  startedAt?: number;
  /** Step at which its promise settled, and how. */
  settledAt?: number;
  settlements: number;
  outcome?: { ok: true } | { ok: false; code: string | undefined };
  release?: (fail: boolean) => void;
}

/** What every snapshot of the metrics must satisfy. */
function checkBalance(m: QueueMetrics, batch: boolean): void {
  expect(m.accepted).toBe(m.completed + m.failed + m.cancelled + m.timedOut + m.dropped + m.queueDepth + m.running);
  expect(m.queueDepth).toBeLessThanOrEqual(m.maxQueue);
  // Without group commit at most one job runs; with it, the jobs taken into the running job's
  // batch count as running too, until settled (the balance above still holds).
  if (!batch) expect(m.running).toBeLessThanOrEqual(1);
  expect(m.running).toBeGreaterThanOrEqual(0);
}

/** What the schedules exercised, summed over a run (printed for docs/reliability.md). */
const explored = { schedules: 0, commands: 0, jobs: 0, ran: 0, codes: {} as Record<string, number> };

async function runSchedule(
  config: { capacity: number; whenFull: WhenFull; timeoutMs: number | undefined; batch: boolean },
  commands: Command[],
): Promise<void> {
  const queue = new WriteQueue(config);
  /** Leaders run followers one after another, as the transaction scope does; completions wait for the end. */
  const takeFollowers = async () => {
    const done: Array<() => void> = [];
    for (let taken = queue.takeNext(); taken; taken = queue.takeNext()) {
      const follower = taken;
      try {
        const value = await follower.run();
        done.push(() => follower.complete(value));
      } catch (error) {
        follower.fail(error);
      }
    }
    for (const complete of done) complete();
  };
  let leading = false;
  const jobs: Tracked[] = [];
  const promises: Array<Promise<unknown>> = [];
  const held: Tracked[] = [];
  let step = 0;
  let running = 0;
  let maxRunning = 0;
  const order: number[] = [];

  const submit = (c: Extract<Command, { kind: 'submit' }>) => {
    const index = jobs.length;
    const tracked: Tracked = { settlements: 0, controller: c.abortable ? new AbortController() : undefined };
    jobs.push(tracked);
    const promise = queue.enqueue(
      async () => {
        tracked.startedAt = ++step;
        order.push(index);
        maxRunning = Math.max(maxRunning, ++running);
        const leads = config.batch && !leading;
        try {
          if (c.behaviour === 'throw') throw new Error(`job ${index} throws`);
          if (c.behaviour === 'hold') {
            await new Promise<void>((resolve, reject) => {
              tracked.release = (fail) => (fail ? reject(new Error(`job ${index} fails late`)) : resolve());
              held.push(tracked);
            });
          }
          return index;
        } finally {
          running--;
          if (leads) {
            leading = true;
            await takeFollowers().finally(() => (leading = false));
          }
        }
      },
      { timeoutMs: c.timeoutMs, signal: tracked.controller?.signal, batchable: true },
    );
    promises.push(
      promise.then(
        () => {
          tracked.settlements++;
          tracked.settledAt ??= ++step;
          tracked.outcome = { ok: true };
        },
        (error: unknown) => {
          tracked.settlements++;
          tracked.settledAt ??= ++step;
          tracked.outcome = { ok: false, code: error instanceof WriteCoordinatorError ? error.code : undefined };
        },
      ),
    );
  };

  const releaseOne = (fail: boolean) => {
    const next = held.shift();
    next?.release?.(fail);
  };

  const pending: Array<Promise<unknown>> = [];
  for (const c of commands) {
    switch (c.kind) {
      case 'submit':
        submit(c);
        break;
      case 'abort':
        jobs[c.index]?.controller?.abort();
        break;
      case 'advance':
        await jest.advanceTimersByTimeAsync(c.ms);
        break;
      case 'release':
        releaseOne(c.fail);
        break;
      case 'drain':
        pending.push(queue.drain());
        break;
      case 'shutdown':
        pending.push(queue.shutdown());
        break;
    }
    await jest.advanceTimersByTimeAsync(0);
    checkBalance(queue.metrics(), config.batch);
  }

  // Wind down: stop the queue, let every held job finish, then everything must have settled.
  pending.push(queue.shutdown());
  for (let i = 0; i < 100 && (held.length > 0 || running > 0); i++) {
    releaseOne(false);
    await jest.advanceTimersByTimeAsync(5);
  }
  await jest.advanceTimersByTimeAsync(100);
  await Promise.all([...promises, ...pending]);

  const final = queue.metrics();
  checkBalance(final, config.batch);
  expect(final).toMatchObject({ queueDepth: 0, running: 0, waitingForRoom: 0, state: 'stopped' });
  // Never two at once; each job ran at most once, in submission order.
  expect(maxRunning).toBeLessThanOrEqual(1);
  expect(order).toEqual([...new Set(order)].sort((a, b) => a - b));
  for (const job of jobs) {
    // Every promise settled exactly once.
    expect(job.settlements).toBe(1);
    const code = job.outcome?.ok === false ? job.outcome.code : undefined;
    // Refused, dropped, or cancelled/expired before it started: its work never ran.
    if (code === 'QUEUE_FULL' || code === 'DRAINING' || code === 'SHUTDOWN') expect(job.startedAt).toBeUndefined();
    if ((code === 'CANCELLED' || code === 'TIMEOUT') && job.startedAt !== undefined) {
      expect(job.startedAt).toBeLessThan(job.settledAt!); // it was running when it ended early
    }
  }
  // Every submission is counted once: accepted (and then settled one way) or refused.
  expect(final.accepted + final.rejected).toBe(jobs.length);
  expect(final.completed).toBe(jobs.filter((j) => j.outcome?.ok).length);

  explored.schedules++;
  explored.commands += commands.length;
  explored.jobs += jobs.length;
  explored.ran += order.length;
  for (const job of jobs) {
    const key = job.outcome?.ok ? 'ok' : (job.outcome?.code ?? 'work error');
    explored.codes[key] = (explored.codes[key] ?? 0) + 1;
  }
}

describe('WriteQueue under random schedules (fast-check)', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it(
    `keeps its invariants over ${RUNS} random schedules`,
    async () => {
      await fc.assert(fc.asyncProperty(settings, fc.array(command, { minLength: 10, maxLength: 60 }), runSchedule), {
        numRuns: RUNS,
      });
      expect(explored.schedules).toBeGreaterThanOrEqual(RUNS);
      console.info(
        `queue schedules: ${explored.schedules} explored, ${explored.commands} commands, ${explored.jobs} jobs ` +
          `(${explored.ran} ran); outcomes ${JSON.stringify(explored.codes)}`,
      );
    },
    RUNS * 50,
  ); // about 4 ms per schedule here; generous for slower CI machines
});
