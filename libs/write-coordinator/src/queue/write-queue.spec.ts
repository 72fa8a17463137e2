import { AsyncLocalStorage } from 'node:async_hooks';
import { deferred, flush } from '../../../../test/fixtures/deferred';
import { WriteCoordinatorError } from '../errors';
import type { JobContext, WriteQueueObserver, WriteQueueSettings } from './queue.types';
import { WriteQueue } from './write-queue';

function queue(settings: Partial<WriteQueueSettings> = {}, observer?: WriteQueueObserver) {
  return new WriteQueue({ capacity: 256, whenFull: 'wait', timeoutMs: undefined, ...settings }, observer);
}

/** A job that logs its start and end and waits for a hand-released gate in between. */
function gatedJob(log: string[], name: string) {
  const gate = deferred<string>();
  const started = jest.fn();
  const fn = async (ctx: JobContext) => {
    started(ctx);
    log.push(`start ${name}`);
    const value = await gate.promise;
    log.push(`end ${name}`);
    return value;
  };
  return { fn, gate, started };
}

/** Starts a gated job named 'first' that holds the drain until `first.gate` is released. */
function occupy(q: WriteQueue) {
  const log: string[] = [];
  const first = gatedJob(log, 'first');
  void q.enqueue(first.fn);
  return { log, first };
}

function codeOf(error: unknown): string | undefined {
  return error instanceof WriteCoordinatorError ? error.code : undefined;
}

function expectBalanced(q: WriteQueue) {
  const m = q.metrics();
  expect(m.accepted).toBe(m.completed + m.failed + m.cancelled + m.timedOut + m.dropped + m.queueDepth + m.running);
}

describe('WriteQueue', () => {
  describe('ordering', () => {
    it('runs jobs one at a time in submission order', async () => {
      const q = queue();
      const log: string[] = [];
      const jobs = ['a', 'b', 'c'].map((name) => gatedJob(log, name));
      const results = jobs.map((job) => q.enqueue(job.fn));
      await flush();
      expect(log).toEqual(['start a']);
      jobs[1].gate.resolve('B');
      jobs[0].gate.resolve('A');
      jobs[2].gate.resolve('C');
      await expect(Promise.all(results)).resolves.toEqual(['A', 'B', 'C']);
      expect(log).toEqual(['start a', 'end a', 'start b', 'end b', 'start c', 'end c']);
    });

    it('never overlaps jobs, even when they throw or are synchronous', async () => {
      const q = queue();
      let running = 0;
      let maxRunning = 0;
      const results = Array.from({ length: 100 }, (_, i) =>
        q.enqueue(async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          if (i % 3 === 0) await flush();
          running--;
          if (i % 5 === 0) throw new Error(`job ${i}`);
          return i;
        }),
      );
      const settled = await Promise.allSettled(results);
      expect(maxRunning).toBe(1);
      expect(settled.filter((s) => s.status === 'rejected')).toHaveLength(20);
      expect(q.metrics()).toMatchObject({ accepted: 100, completed: 80, failed: 20, running: 0, queueDepth: 0 });
    });

    it("runs each job in its submitter's async context, not the one that drove the drain", async () => {
      const q = queue();
      const context = new AsyncLocalStorage<string>();
      const seen = await Promise.all(
        ['a', 'b', 'c'].map((id) => context.run(id, () => q.enqueue(async () => (await flush(), context.getStore())))),
      );
      expect(seen).toEqual(['a', 'b', 'c']);
    });

    it('rejects with the very error object the job threw', async () => {
      const q = queue();
      const boom = new Error('boom');
      await expect(q.enqueue(() => Promise.reject(boom))).rejects.toBe(boom);
    });
  });

  describe('when the queue is full', () => {
    it("rejects at once with QUEUE_FULL under whenFull 'reject' and counts it only as rejected", async () => {
      const q = queue({ capacity: 2, whenFull: 'reject' });
      const log: string[] = [];
      const running = gatedJob(log, 'running');
      const p0 = q.enqueue(running.fn);
      await flush();
      const p1 = q.enqueue(async () => 1);
      const p2 = q.enqueue(async () => 2);
      const refused = jest.fn();
      await expect(q.enqueue(refused)).rejects.toMatchObject({ code: 'QUEUE_FULL', retryable: true });
      expect(refused).not.toHaveBeenCalled();
      expect(q.metrics()).toMatchObject({ accepted: 3, rejected: 1, queueDepth: 2, maxQueue: 2, running: 1 });
      running.gate.resolve('x');
      await Promise.all([p0, p1, p2]);
      expectBalanced(q);
    });

    it("makes submitters wait for room under whenFull 'wait', outside queueDepth, and admits them in order", async () => {
      const q = queue({ capacity: 1 });
      const log: string[] = [];
      const first = gatedJob(log, 'first');
      const p0 = q.enqueue(first.fn);
      await flush();
      const p1 = q.enqueue(async () => log.push('second'));
      const p2 = q.enqueue(async () => log.push('third'));
      expect(q.metrics()).toMatchObject({ accepted: 2, queueDepth: 1, waitingForRoom: 1, peakQueueDepth: 1 });
      first.gate.resolve('done');
      await Promise.all([p0, p1, p2]);
      expect(log).toEqual(['start first', 'end first', 'second', 'third']);
      expect(q.metrics()).toMatchObject({ accepted: 3, completed: 3, waitingForRoom: 0, peakQueueDepth: 1 });
    });

    it('rejects a submitter whose deadline passes while it waits for room, counting it as rejected', async () => {
      const q = queue({ capacity: 1 });
      const { first } = occupy(q);
      await flush();
      void q.enqueue(async () => 'queued');
      const neverRuns = jest.fn();
      await expect(q.enqueue(neverRuns, { timeoutMs: 5 })).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(q.metrics()).toMatchObject({ rejected: 1, timedOut: 0, waitingForRoom: 0, accepted: 2 });
      first.gate.resolve('x');
      await q.onIdle();
      expect(neverRuns).not.toHaveBeenCalled();
      expectBalanced(q);
    });
  });

  describe('cancellation and deadlines while waiting', () => {
    it('removes a job aborted while queued; it never runs and the next job still does', async () => {
      const q = queue();
      const { log, first } = occupy(q);
      const controller = new AbortController();
      const aborted = jest.fn();
      const p1 = q.enqueue(aborted, { signal: controller.signal });
      const p2 = q.enqueue(async () => log.push('next'));
      await flush();
      controller.abort(new Error('user went away'));
      await expect(p1).rejects.toMatchObject({ code: 'CANCELLED', retryable: true });
      expect(q.metrics()).toMatchObject({ cancelled: 1, queueDepth: 1 });
      first.gate.resolve('x');
      await p2;
      expect(aborted).not.toHaveBeenCalled();
      expect(log).toEqual(['start first', 'end first', 'next']);
      expectBalanced(q);
    });

    it('refuses a job whose signal is already aborted, without calling it', async () => {
      const q = queue();
      const fn = jest.fn();
      await expect(q.enqueue(fn, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'CANCELLED' });
      expect(fn).not.toHaveBeenCalled();
      expect(q.metrics()).toMatchObject({ accepted: 0, rejected: 1, cancelled: 0 });
    });

    it('removes a job whose deadline passes while queued; it never runs', async () => {
      jest.useFakeTimers();
      try {
        const q = queue({ timeoutMs: 100 });
        const log: string[] = [];
        const first = gatedJob(log, 'first');
        void q.enqueue(first.fn, { timeoutMs: 1_000 });
        const expired = jest.fn();
        const p1 = q.enqueue(expired);
        const assertion = expect(p1).rejects.toMatchObject({ code: 'TIMEOUT', retryable: true });
        await jest.advanceTimersByTimeAsync(150);
        await assertion;
        expect(q.metrics()).toMatchObject({ timedOut: 1, queueDepth: 0, running: 1 });
        first.gate.resolve('x');
        await q.onIdle();
        expect(expired).not.toHaveBeenCalled();
        expectBalanced(q);
      } finally {
        jest.useRealTimers();
      }
    });
  });

  describe('cancellation and deadlines while running', () => {
    it('rejects the caller at the deadline, aborts the job signal, and holds the drain until the job settles', async () => {
      jest.useFakeTimers();
      try {
        const q = queue();
        const log: string[] = [];
        const slow = gatedJob(log, 'slow');
        const p0 = q.enqueue(slow.fn, { timeoutMs: 50 });
        const p1 = q.enqueue(async () => log.push('next'));
        const assertion = expect(p0).rejects.toMatchObject({ code: 'TIMEOUT' });
        await jest.advanceTimersByTimeAsync(60);
        await assertion;
        const ctx = slow.started.mock.calls[0][0] as JobContext;
        expect(ctx.signal.aborted).toBe(true);
        expect(ctx.claimCommit()).toBe(false);
        expect(log).toEqual(['start slow']);
        expect(q.metrics()).toMatchObject({ running: 1, timedOut: 0 });
        expectBalanced(q);
        slow.gate.resolve('too late');
        await p1;
        expect(log).toEqual(['start slow', 'end slow', 'next']);
        expect(q.metrics()).toMatchObject({ timedOut: 1, completed: 1 });
        expectBalanced(q);
      } finally {
        jest.useRealTimers();
      }
    });

    it('rejects with CANCELLED when the signal aborts while running', async () => {
      const q = queue();
      const log: string[] = [];
      const job = gatedJob(log, 'job');
      const controller = new AbortController();
      const p = q.enqueue(job.fn, { signal: controller.signal });
      await flush();
      controller.abort();
      await expect(p).rejects.toMatchObject({ code: 'CANCELLED' });
      const ctx = job.started.mock.calls[0][0] as JobContext;
      expect(ctx.signal.aborted).toBe(true);
      job.gate.resolve('x');
      await q.onIdle();
      expect(q.metrics()).toMatchObject({ cancelled: 1, completed: 0 });
    });

    it('delivers the result when the job claimed its commit before the deadline', async () => {
      jest.useFakeTimers();
      try {
        const q = queue();
        const gate = deferred();
        const p = q.enqueue(
          async (ctx) => {
            expect(ctx.claimCommit()).toBe(true);
            await gate.promise;
            return 'committed';
          },
          { timeoutMs: 10 },
        );
        await jest.advanceTimersByTimeAsync(50);
        gate.resolve();
        await expect(p).resolves.toBe('committed');
        expect(q.metrics()).toMatchObject({ completed: 1, timedOut: 0 });
      } finally {
        jest.useRealTimers();
      }
    });
  });

  describe('deadlines while the event loop is busy (timers cannot fire)', () => {
    /** Blocks the event loop for `ms`: the deadline timers of other jobs cannot fire meanwhile. */
    const busy = (ms: number) => {
      const until = performance.now() + ms;
      while (performance.now() < until);
    };

    it('never starts a queued job whose deadline passed while the running job blocked the loop', async () => {
      const q = queue();
      const ran = jest.fn();
      const first = q.enqueue(async () => {
        await Promise.resolve(); // the next job is queued by then
        busy(60);
        return 'first';
      });
      const late = q.enqueue(ran, { timeoutMs: 20 });
      await expect(first).resolves.toBe('first');
      await expect(late).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(ran).not.toHaveBeenCalled();
      expect(q.metrics()).toMatchObject({ timedOut: 1, completed: 1 });
      expectBalanced(q);
    });

    it('still runs one job at a time when expiring the head admits submitters waiting for room', async () => {
      const q = queue({ capacity: 1 });
      let running = 0;
      let maxRunning = 0;
      const job =
        (name: string, first = false) =>
        async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await Promise.resolve(); // the others are submitted by then
          if (first)
            busy(60); // B's deadline passes meanwhile; its timer cannot fire
          else await flush();
          running--;
          return name;
        };
      const a = q.enqueue(job('A', true));
      const b = q.enqueue(job('B'), { timeoutMs: 30 }).catch((e: unknown) => codeOf(e));
      const c = q.enqueue(job('C')); // waits for room
      const d = q.enqueue(job('D')); // waits for room
      expect(await Promise.all([a, b, c, d])).toEqual(['A', 'TIMEOUT', 'C', 'D']);
      expect(maxRunning).toBe(1);
      expectBalanced(q);
    });

    it('refuses the commit of a job whose synchronous work ran past its deadline', async () => {
      const q = queue();
      let claimed: boolean | undefined;
      const job = q.enqueue(
        (ctx) => {
          busy(40);
          claimed = ctx.claimCommit();
          return 'late';
        },
        { timeoutMs: 10 },
      );
      await expect(job).rejects.toMatchObject({ code: 'TIMEOUT' });
      expect(claimed).toBe(false);
      expectBalanced(q);
    });
  });

  describe('drain()', () => {
    it('refuses new work with DRAINING, finishes every queued job, then stops', async () => {
      const q = queue();
      const log: string[] = [];
      const first = gatedJob(log, 'first');
      const p0 = q.enqueue(first.fn);
      const p1 = q.enqueue(async () => log.push('queued'));
      const drained = q.drain();
      expect(q.state).toBe('draining');
      await expect(q.enqueue(async () => log.push('late'))).rejects.toMatchObject({
        code: 'DRAINING',
        retryable: true,
      });
      first.gate.resolve('x');
      await drained;
      await Promise.all([p0, p1]);
      expect(log).toEqual(['start first', 'end first', 'queued']);
      expect(q.state).toBe('stopped');
      await expect(q.enqueue(async () => 1)).rejects.toMatchObject({ code: 'SHUTDOWN' });
      expect(q.metrics()).toMatchObject({ completed: 2, rejected: 2 });
    });

    it('resolves at once on an idle queue', async () => {
      const q = queue();
      await q.drain();
      expect(q.state).toBe('stopped');
    });
  });

  describe('shutdown()', () => {
    it('lets the running job finish and rejects queued jobs with SHUTDOWN without running them', async () => {
      const q = queue({ capacity: 2 });
      const log: string[] = [];
      const first = gatedJob(log, 'first');
      const p0 = q.enqueue(first.fn);
      const queued = jest.fn();
      const p1 = q.enqueue(queued);
      const p2 = q.enqueue(queued);
      const p3 = q.enqueue(queued); // waits for room
      await flush();
      const stopped = q.shutdown();
      await expect(p1).rejects.toMatchObject({ code: 'SHUTDOWN', retryable: true });
      await expect(p2).rejects.toMatchObject({ code: 'SHUTDOWN' });
      await expect(p3).rejects.toMatchObject({ code: 'SHUTDOWN' });
      let done = false;
      void stopped.then(() => (done = true));
      await flush();
      expect(done).toBe(false);
      first.gate.resolve('finished');
      await stopped;
      await expect(p0).resolves.toBe('finished');
      expect(queued).not.toHaveBeenCalled();
      expect(q.metrics()).toMatchObject({ accepted: 3, completed: 1, dropped: 2, rejected: 1, state: 'stopped' });
      expectBalanced(q);
    });
  });

  describe('observer', () => {
    it('reports state changes in order and survives an observer that throws', async () => {
      const log: string[] = [];
      const observer: WriteQueueObserver = {
        jobAccepted: (job, depth) => log.push(`accepted ${job.label} ${depth}`),
        jobStarted: (job) => {
          log.push(`started ${job.label}`);
          throw new Error('listener bug');
        },
        jobCompleted: (job) => log.push(`completed ${job.label}`),
        jobFailed: (job, error) => log.push(`failed ${job.label} ${(error as Error).message}`),
        jobRejected: (job, error) => log.push(`rejected ${job.label} ${error.code}`),
        queueSaturated: (depth) => log.push(`saturated ${depth}`),
        queueDrained: () => log.push('drained'),
      };
      const q = queue({ capacity: 1, whenFull: 'reject' }, observer);
      const a = q.enqueue(async () => 'a', { label: 'a' });
      const b = q.enqueue(async () => Promise.reject(new Error('b failed')), { label: 'b' });
      const c = q.enqueue(async () => 'c', { label: 'c' });
      await Promise.allSettled([a, b, c]);
      expect(log).toEqual([
        'accepted a 1',
        'saturated 1',
        'started a',
        'accepted b 1',
        'saturated 1',
        'rejected c QUEUE_FULL',
        'completed a',
        'started b',
        'failed b b failed',
        'drained',
      ]);
      await expect(a).resolves.toBe('a');
    });
  });

  describe('metrics()', () => {
    it('reports latency percentiles, peak depth and ages', async () => {
      const q = queue();
      const { first } = occupy(q);
      void q.enqueue(async () => 1);
      void q.enqueue(async () => 2);
      await new Promise((r) => setTimeout(r, 20));
      const during = q.metrics();
      expect(during.runningForMs).toBeGreaterThanOrEqual(15);
      expect(during.oldestWaitMs).toBeGreaterThanOrEqual(15);
      expect(during.queueDepth).toBe(2);
      first.gate.resolve('x');
      await q.onIdle();
      const after = q.metrics();
      expect(after.peakQueueDepth).toBe(2);
      expect(after.waitMs.samples).toBe(3);
      expect(after.waitMs.max).toBeGreaterThanOrEqual(15);
      expect(after.runMs.p99).toBeGreaterThanOrEqual(15);
      expect(after).toMatchObject({ runningForMs: 0, oldestWaitMs: 0, queueDepth: 0 });
    });

    it('reports the queue head as the oldest waiter, not a younger submitter waiting for room', async () => {
      const q = queue({ capacity: 1 });
      const { first } = occupy(q);
      void q.enqueue(async () => 'queued');
      await new Promise((r) => setTimeout(r, 20));
      void q.enqueue(async () => 'waits for room');
      expect(q.metrics()).toMatchObject({ queueDepth: 1, waitingForRoom: 1 });
      expect(q.metrics().oldestWaitMs).toBeGreaterThanOrEqual(15);
      first.gate.resolve('x');
      await q.onIdle();
    });

    it('keeps the counters balanced across every outcome', async () => {
      const q = queue({ capacity: 2, whenFull: 'reject' });
      const controller = new AbortController();
      const outcomes = [
        q.enqueue(async () => flush()),
        q.enqueue(async () => Promise.reject(new Error('x'))),
        q.enqueue(async () => 1, { signal: controller.signal }),
        q.enqueue(async () => 1, { timeoutMs: 1_000 }),
        q.enqueue(async () => 1),
      ];
      controller.abort();
      const settled = await Promise.allSettled(outcomes);
      expect(settled.map((s) => (s.status === 'fulfilled' ? 'ok' : (codeOf(s.reason) ?? 'error')))).toEqual([
        'ok',
        'error',
        'CANCELLED',
        'QUEUE_FULL',
        'QUEUE_FULL',
      ]);
      expectBalanced(q);
      expect(q.metrics()).toMatchObject({ accepted: 3, completed: 1, failed: 1, cancelled: 1, rejected: 2 });
    });
  });
});
