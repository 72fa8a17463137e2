import { WriteCoordinatorEvents } from '@app/write-coordinator';
import { EventRecorder } from './fixtures/event.recorder';
import { ItemHandlers } from './fixtures/item.handlers';
import { committedItems } from './fixtures/temp-sqlite';
import { useTestingApp } from './fixtures/testing-app';

describe('WriteCoordinator.submit() (seed parity)', () => {
  const t = useTestingApp({ providers: [ItemHandlers, EventRecorder] });
  const rows = () => committedItems(t.database);

  it('fails an unknown method with METHOD_NOT_FOUND, counted as accepted and failed', async () => {
    await expect(t.coordinator.submit({ method: 'nope' })).rejects.toMatchObject({
      code: 'METHOD_NOT_FOUND',
      retryable: false,
    });
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 1, failed: 1, completed: 0 });
  });

  it('runs a known method and resolves with a JSON copy of its result', async () => {
    const result = await t.coordinator.submit({ method: 'item.add', params: { key: 'a' }, meta: { requestId: 'r1' } });
    expect(result).toEqual({ id: 1, key: 'a', at: '1970-01-01T00:00:00.000Z' });
    expect((await rows()).map((r) => r.key)).toEqual(['a']);
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 1, completed: 1 });
  });

  it('publishes a change after commit only, in commit order', async () => {
    const recorder = t.app.get(EventRecorder);
    await t.coordinator.submit({ method: 'item.add', params: { key: 'a' }, meta: { requestId: 'r1' } });
    await expect(t.coordinator.submit({ method: 'item.add', params: { key: 'a' } })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await t.coordinator.submit({ method: 'item.add', params: { key: 'b' } });
    const changes = recorder.events
      .filter((e) => e.name === WriteCoordinatorEvents.Change && e.payload.kind === 'request')
      .map((e) => e.payload);
    expect(changes).toEqual([
      expect.objectContaining({
        method: 'item.add',
        topic: 'item.add',
        params: { key: 'a' },
        meta: { requestId: 'r1' },
      }),
      expect.objectContaining({ method: 'item.add', params: { key: 'b' } }),
    ]);
  });

  it('publishes changes of re-entrant submits only when the enclosing job commits', async () => {
    const recorder = t.app.get(EventRecorder);
    await t.coordinator
      .run(async () => {
        await t.coordinator.submit({ method: 'item.add', params: { key: 'inner' } });
        throw new Error('outer fails');
      })
      .catch(() => undefined);
    await t.coordinator.run(async () => {
      await t.coordinator.submit({ method: 'item.add', params: { key: 'kept' } });
      await t.coordinator.submit({ method: 'item.add', params: { key: 'kept' } }).catch(() => undefined); // CONFLICT
    });
    const changes = recorder.events
      .filter((e) => e.name === WriteCoordinatorEvents.Change && e.payload.kind === 'request')
      .map((e) => e.payload.params);
    expect(changes).toEqual([{ key: 'kept' }]);
    expect((await rows()).map((r) => r.key)).toEqual(['kept']);
  });

  it('refuses params that validate() refuses with INVALID_PARAMS before queueing, counted as rejected', async () => {
    const recorder = t.app.get(EventRecorder);
    await expect(t.coordinator.submit({ method: 'item.add', params: { key: 42 } })).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      label: 'item.add',
      message: expect.stringContaining('validate() of ItemHandlers.add refused them'),
    });
    expect(await rows()).toHaveLength(0);
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 0, rejected: 1, failed: 0, completed: 0 });
    expect(recorder.log()).toEqual(['job.rejected item.add']);
  });

  it('passes an InvalidParamsError thrown by the handler through as INVALID_PARAMS, a failed job', async () => {
    const recorder = t.app.get(EventRecorder);
    await expect(t.coordinator.submit({ method: 'item.addChecked', params: {} })).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      message: expect.stringContaining('key must be a string'),
    });
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 1, rejected: 0, failed: 1, completed: 0 });
    expect(recorder.log()).toEqual([
      'job.accepted item.addChecked',
      'job.started item.addChecked',
      'job.failed item.addChecked',
      'queue.drained',
    ]);
  });

  it('maps a UNIQUE violation to CONFLICT and writes nothing of that job', async () => {
    await t.coordinator.submit({ method: 'item.add', params: { key: 'dup' } });
    await expect(t.coordinator.submit({ method: 'item.add', params: { key: 'dup' } })).rejects.toMatchObject({
      code: 'CONFLICT',
      retryable: false,
    });
    expect(await rows()).toHaveLength(1);
  });

  it('fails with INTERNAL and rolls back when the result is not JSON-serialisable', async () => {
    await expect(t.coordinator.submit({ method: 'item.addThenBreak', params: { key: 'x' } })).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    expect(await rows()).toHaveLength(0);
  });

  it('refuses a malformed request with INVALID_PARAMS, counted as rejected', async () => {
    await expect(t.coordinator.submit({} as never)).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    await expect(t.coordinator.submit(null as never)).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 0, rejected: 2 });
  });

  it('fails a submission after shutdown with SHUTDOWN', async () => {
    await t.coordinator.shutdown();
    await expect(t.coordinator.submit({ method: 'item.add', params: { key: 'a' } })).rejects.toMatchObject({
      code: 'SHUTDOWN',
      retryable: true,
    });
    expect(await rows()).toHaveLength(0);
  });

  it('fails a pre-aborted submission with CANCELLED and never runs it', async () => {
    await expect(
      t.coordinator.submit({ method: 'item.add', params: { key: 'a' } }, { signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await rows()).toHaveLength(0);
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 0, rejected: 1 });
  });
});
