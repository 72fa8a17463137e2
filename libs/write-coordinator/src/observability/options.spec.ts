import { Registry } from 'prom-client';
import { InvalidOptionsError } from '../errors';
import { WriteCoordinatorTracing } from './opentelemetry';
import { WriteCoordinatorPrometheus } from './prometheus';

describe('options of the observability entries', () => {
  it.each<[string, () => unknown, string]>([
    [
      'prometheus: not an object',
      () => new WriteCoordinatorPrometheus(42 as never),
      'options must be an object (received 42, number)',
    ],
    [
      'prometheus: a typo',
      () => new WriteCoordinatorPrometheus({ regsitry: new Registry() } as never),
      'regsitry must be one of the known options (registry, prefix)',
    ],
    [
      'prometheus: no registry',
      () => new WriteCoordinatorPrometheus({ registry: {} as never }),
      'registry must be a prom-client Registry (received',
    ],
    [
      'prometheus: a bad prefix',
      () => new WriteCoordinatorPrometheus({ prefix: '1wc_' }),
      'prefix must be a string matching',
    ],
    [
      'tracing: a typo',
      () => new WriteCoordinatorTracing({ provider: {} } as never),
      'provider must be one of the known options (tracerProvider)',
    ],
    [
      'tracing: no provider',
      () => new WriteCoordinatorTracing({ tracerProvider: null as never }),
      'tracerProvider must be an OpenTelemetry TracerProvider (received null',
    ],
  ])('%s: INVALID_OPTIONS naming the field, the expectation and the value', (_, construct, message) => {
    expect(construct).toThrow(InvalidOptionsError);
    expect(construct).toThrow(message);
  });

  it('accepts its defaults and a registry and prefix of its own', () => {
    expect(() => new WriteCoordinatorPrometheus({ registry: new Registry(), prefix: 'app_writes_' })).not.toThrow();
    expect(() => new WriteCoordinatorTracing()).not.toThrow();
  });
});
