import { WRITE_HANDLER_METADATA } from '../write-coordinator.constants';
import { WriteHandler } from './write-handler.decorator';

describe('@WriteHandler', () => {
  it('records method, coordinator and validate on the handler', () => {
    const validate = (p: unknown) => p !== null;
    class Handlers {
      @WriteHandler('a.b', { coordinator: 'audit', validate })
      handle(): void {}
    }
    expect(Reflect.getMetadata(WRITE_HANDLER_METADATA, Handlers.prototype.handle)).toEqual({
      method: 'a.b',
      coordinator: 'audit',
      validate,
    });
  });

  describe('when misused', () => {
    it.each<[string, () => unknown, string]>([
      [
        'an empty method',
        () => WriteHandler(''),
        "@WriteHandler(): method must be a non-empty string (received '', string)",
      ],
      [
        'a non-string method',
        () => WriteHandler(5 as never),
        '@WriteHandler(): method must be a non-empty string (received 5, number)',
      ],
      [
        'an empty coordinator',
        () => WriteHandler('m', { coordinator: '' }),
        '@WriteHandler(): coordinator must be a non-empty string',
      ],
      [
        'a validate that is not a function',
        () => WriteHandler('m', { validate: true as never }),
        '@WriteHandler(): validate must be a function',
      ],
    ])('throws INVALID_OPTIONS for %s', (_case, decorate, message) => {
      expect(decorate).toThrow(message);
    });

    it('throws at decoration time on a property that is not a method', () => {
      class Bad {}
      expect(() => WriteHandler('m')(Bad.prototype, 'x', { value: 1 } as TypedPropertyDescriptor<number>)).toThrow(
        '@WriteHandler() decorates methods only; Bad.x is not a method',
      );
    });
  });
});
