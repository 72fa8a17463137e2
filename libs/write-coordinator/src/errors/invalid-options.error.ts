import { WriteCoordinatorError } from './write-coordinator.error';

/**
 * Module options (or another bootstrap-time configuration) are invalid. Code `INVALID_OPTIONS`.
 * The message names the field, what was expected and what was received.
 */
export class InvalidOptionsError extends WriteCoordinatorError {
  /** The offending option, e.g. `queueSize`. */
  readonly field: string;
  /** The offending value as given. */
  readonly received: unknown;

  constructor(field: string, expected: string, received: unknown, context = 'WriteCoordinatorModule') {
    super('INVALID_OPTIONS', `${context}: ${field} must be ${expected} (received ${describeValue(received)})`, false);
    this.field = field;
    this.received = received;
  }
}

/** @internal Renders a value with its type, e.g. `2.5, number` or `'x', string`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'undefined';
  if (typeof value === 'string') return `'${value}', string`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `${String(value)}, ${typeof value}`;
  }
  if (typeof value === 'function') return `function ${value.name || '(anonymous)'}`;
  const ctor = (value as object).constructor?.name;
  return ctor && ctor !== 'Object' ? `an instance of ${ctor}` : 'object';
}
