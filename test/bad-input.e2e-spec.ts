import { Injectable } from '@nestjs/common';
import { EntityManager } from 'typeorm';
import { WriteHandler, WriteRequest } from '@app/write-coordinator';
import { committedKeys } from './fixtures/committed-rows';
import { Item } from './fixtures/item.entity';
import { useTestingApp } from './fixtures/testing-app';

const MAX = 1_024;

@Injectable()
class EchoHandlers {
  readonly calls: unknown[] = [];

  @WriteHandler('echo')
  async echo(params: { key?: string; size?: number }, manager: EntityManager): Promise<unknown> {
    this.calls.push(params);
    await manager.insert(Item, { key: params?.key ?? 'echo', job: 0, step: 0 });
    return params?.size ? 'x'.repeat(params.size) : params;
  }

  @WriteHandler('bigint')
  async bigint(_: unknown, manager: EntityManager): Promise<unknown> {
    await manager.insert(Item, { key: 'bigint', job: 0, step: 0 });
    return { value: 1n };
  }
}

const circular: Record<string, unknown> = { key: 'c' };
circular.self = circular;

/** Malformed submit() requests: each is refused before it is queued, with INVALID_PARAMS. */
const MALFORMED: Array<[string, unknown, string]> = [
  ['null request', null, 'the request must be an object'],
  ['a number', 42, 'the request must be an object'],
  ['an array', [], 'the request must be an object'],
  ['missing method', { params: {} }, 'request.method must be a non-empty string (received undefined)'],
  ['non-string method', { method: 7 }, 'request.method must be a non-empty string (received 7, number)'],
  ['empty method', { method: '' }, "request.method must be a non-empty string (received '', string)"],
  ['BigInt params', { method: 'echo', params: { n: 1n } }, 'request.params must be JSON-serialisable'],
  ['circular params', { method: 'echo', params: circular }, 'request.params must be JSON-serialisable'],
  ['function params', { method: 'echo', params: () => 1 }, 'request.params must be JSON-serialisable'],
  [
    'oversized params',
    { method: 'echo', params: { key: 'big', pad: 'x'.repeat(MAX) } },
    `more than maxPayloadBytes (${MAX})`,
  ],
  ['meta not an object', { method: 'echo', meta: 'r-1' }, 'request.meta must be an object'],
  ['meta.requestId a number', { method: 'echo', meta: { requestId: 1 } }, 'request.meta.requestId must be a string'],
];

describe('bad input to submit()', () => {
  const t = useTestingApp({ providers: [EchoHandlers], coordinator: { maxPayloadBytes: MAX } });

  it.each(MALFORMED)(
    'refuses %s with INVALID_PARAMS before queueing; nothing runs or is written',
    async (_, request, message) => {
      await expect(t.coordinator.submit(request as WriteRequest)).rejects.toMatchObject({
        code: 'INVALID_PARAMS',
        retryable: false,
        message: expect.stringContaining(message),
      });
      expect(t.app.get(EchoHandlers).calls).toEqual([]);
      expect(t.coordinator.metrics()).toMatchObject({ accepted: 0, rejected: 1 });
      expect(committedKeys(t.database)).toEqual([]);
    },
  );

  it.each([
    ['not JSON-serialisable', { method: 'bigint' }, 'not JSON-serialisable'],
    ['oversized', { method: 'echo', params: { size: MAX + 1 } }, `more than maxPayloadBytes (${MAX})`],
  ])('fails a handler result that is %s with INTERNAL; its writes are rolled back', async (_, request, message) => {
    await expect(t.coordinator.submit(request)).rejects.toMatchObject({
      code: 'INTERNAL',
      message: expect.stringContaining(message),
    });
    expect(committedKeys(t.database)).toEqual([]);
    expect(t.coordinator.metrics()).toMatchObject({ accepted: 1, failed: 1 });
  });

  it('accepts a request at the limit', async () => {
    const params = { key: 'fits', pad: '' };
    params.pad = 'x'.repeat(MAX - JSON.stringify(params).length);
    await expect(t.coordinator.submit({ method: 'echo', params })).resolves.toEqual(params);
    expect(committedKeys(t.database)).toEqual(['fits']);
  });
});
