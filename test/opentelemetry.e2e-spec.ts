import { context, Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { WriteCoordinatorError } from '@app/write-coordinator';
import {
  WRITE_COORDINATOR_JOB_SPAN,
  WRITE_COORDINATOR_SPAN_ATTRIBUTES as ATTR,
  WriteCoordinatorTracing,
} from '@app/write-coordinator/observability/opentelemetry';
import { deferred, flush } from './fixtures/deferred';
import { Item } from './fixtures/item.entity';
import { useTestingApp } from './fixtures/testing-app';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

/** Runs `fn` inside a new active span named `name` (the submitter's own span), ended after it. */
function within<T>(name: string, fn: () => Promise<T>): Promise<{ span: Span; result: T | unknown }> {
  return trace.getTracer('test').startActiveSpan(name, async (span) => {
    try {
      return { span, result: await fn() };
    } catch (error) {
      return { span, result: error };
    } finally {
      span.end();
    }
  });
}

const jobSpans = (): ReadableSpan[] => exporter.getFinishedSpans().filter((s) => s.name === WRITE_COORDINATOR_JOB_SPAN);
const jobSpan = (label: string): ReadableSpan => {
  const found = jobSpans().filter((s) => s.attributes[ATTR.label] === label);
  if (found.length !== 1) throw new Error(`${found.length} job spans labelled ${label}`);
  return found[0];
};
/** Trace and parent of a span, to compare with the submitter's span. */
const lineage = (span: ReadableSpan) => ({
  traceId: span.spanContext().traceId,
  parentSpanId: span.parentSpanContext?.spanId,
});
const childOf = (parent: Span) => ({ traceId: parent.spanContext().traceId, parentSpanId: parent.spanContext().spanId });

describe('WriteCoordinatorTracing (OpenTelemetry spans through @opentelemetry/api)', () => {
  beforeAll(() => context.setGlobalContextManager(contextManager.enable()));
  afterAll(() => context.disable());
  afterEach(() => {
    trace.disable();
    exporter.reset();
  });

  describe('when no SDK is registered', () => {
    const t = useTestingApp({ coordinator: { instrumentation: [new WriteCoordinatorTracing()] } });

    it('records nothing, and starts recording once an SDK registers (the coordinator built before it)', async () => {
      await t.coordinator.run((m) => m.insert(Item, { key: 'before', job: 1, step: 0 }), { label: 'before' });
      trace.setGlobalTracerProvider(provider);
      await t.coordinator.run((m) => m.insert(Item, { key: 'after', job: 2, step: 0 }), { label: 'after' });
      expect(jobSpans().map((s) => s.attributes[ATTR.label])).toEqual(['after']);
    });
  });

  describe('with an SDK registered', () => {
    beforeEach(() => trace.setGlobalTracerProvider(provider));
    const t = useTestingApp({ coordinator: { queueSize: 2, instrumentation: [new WriteCoordinatorTracing()] } });

    it('gives a lone job a span under the submitter’s span: label, wait, batch of 1, commit event, outcome', async () => {
      const { span: caller } = await within('caller', () =>
        t.coordinator.run((m) => m.insert(Item, { key: 'a', job: 1, step: 0 }), { label: 'insert a' }),
      );
      const span = jobSpan('insert a');
      expect(lineage(span)).toEqual(childOf(caller));
      expect(span.attributes).toMatchObject({
        [ATTR.coordinator]: 'default',
        [ATTR.outcome]: 'completed',
        [ATTR.batchSize]: 1,
      });
      expect(span.attributes[ATTR.waitMs]).toEqual(expect.any(Number));
      expect(span.attributes[ATTR.runMs]).toEqual(expect.any(Number));
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
      expect(span.events.map((e) => [e.name, e.attributes?.[ATTR.batchSize]])).toEqual([['commit', 1]]);
    });

    it('parents each job of a batch to its own submitter, queued or waiting for room, and marks the batch size', async () => {
      const gate = deferred();
      const holder = within('holder-caller', () => t.coordinator.run(() => gate.promise, { label: 'holder' }));
      // queueSize 2: members 1 and 2 are queued, 3 and 4 wait for room; the drain runs in the holder's context.
      const members = [1, 2, 3, 4].map((i) =>
        within(`caller-${i}`, () =>
          t.coordinator.run((m) => m.insert(Item, { key: `k${i}`, job: i, step: 0 }), { label: `member-${i}` }),
        ),
      );
      await flush();
      expect(t.coordinator.metrics()).toMatchObject({ running: 1, queueDepth: 2, waitingForRoom: 2 });
      gate.resolve();
      const callers = await Promise.all([holder, ...members]);

      for (const [i, label] of ['holder', 'member-1', 'member-2', 'member-3', 'member-4'].entries()) {
        const span = jobSpan(label);
        expect(lineage(span)).toEqual(childOf(callers[i].span));
        expect(span.attributes).toMatchObject({ [ATTR.outcome]: 'completed', [ATTR.batchSize]: 5 });
        expect(span.events.map((e) => [e.name, e.attributes?.[ATTR.batchSize]])).toEqual([['commit', 5]]);
      }
    });

    it('ends failed, cancelled, timed-out and refused jobs with status ERROR, their outcome and error code', async () => {
      const gate = deferred();
      const holder = t.coordinator.run(() => gate.promise, { label: 'holder' });
      const aborter = new AbortController();
      const outcomes = Promise.all([
        within('c-cancelled', () => t.coordinator.run(() => undefined, { label: 'cancelled', signal: aborter.signal })),
        within('c-timed-out', () => t.coordinator.run(() => undefined, { label: 'timed out', timeoutMs: 1 })),
        within('c-refused', () =>
          t.coordinator.run(() => undefined, { label: 'refused', signal: AbortSignal.abort() }),
        ),
      ]);
      aborter.abort();
      const [cancelled, timedOut, refused] = await outcomes;
      gate.resolve();
      await holder;
      const { span: failedCaller } = await within('c-failed', () =>
        t.coordinator.run(
          async (m) => {
            await m.insert(Item, { key: 'rolled back', job: 9, step: 0 });
            throw new Error('work failed');
          },
          { label: 'failed' },
        ),
      );
      const { result: unknownMethod } = await within('c-unknown', () => t.coordinator.submit({ method: 'noSuchMethod' }));
      expect((unknownMethod as WriteCoordinatorError).code).toBe('METHOD_NOT_FOUND');

      const cases: Array<[string, Span | undefined, string, string, boolean]> = [
        ['failed', failedCaller, 'failed', 'UNCODED', true],
        ['noSuchMethod', undefined, 'failed', 'METHOD_NOT_FOUND', true],
        ['cancelled', cancelled.span, 'cancelled', 'CANCELLED', false],
        ['timed out', timedOut.span, 'timed_out', 'TIMEOUT', false],
        ['refused', refused.span, 'rejected', 'CANCELLED', false],
      ];
      for (const [label, caller, outcome, code, started] of cases) {
        const span = jobSpan(label);
        if (caller) expect(lineage(span)).toEqual(childOf(caller));
        expect([label, span.attributes[ATTR.outcome], span.attributes[ATTR.errorCode]]).toEqual([label, outcome, code]);
        expect(span.status.code).toBe(SpanStatusCode.ERROR);
        expect(span.events.map((e) => e.name)).toEqual(['exception']); // never a commit
        expect([label, ATTR.waitMs in span.attributes]).toEqual([label, started]);
      }
    });
  });
});
