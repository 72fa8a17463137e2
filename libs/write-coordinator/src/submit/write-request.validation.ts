import { describeValue } from '../errors/invalid-options.error';

const META_FIELDS = ['requestId', 'source', 'timestamp'] as const;

/**
 * @internal Why a `submit()` request cannot be accepted, or undefined when it can: the method
 * must be a non-empty string, params must survive a JSON round trip within `maxPayloadBytes`
 * (they may cross a process boundary), meta must hold only strings. Checked before the request
 * is queued, so a malformed one never reaches its handler.
 */
export function requestProblem(request: unknown, maxPayloadBytes: number): string | undefined {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) {
    return `the request must be an object { method, params?, meta? } (received ${describeValue(request)})`;
  }
  const { method, params, meta } = request as Record<string, unknown>;
  if (typeof method !== 'string' || method === '') {
    return `request.method must be a non-empty string (received ${describeValue(method)})`;
  }
  if (params !== undefined) {
    const size = jsonSize(params);
    if (typeof size === 'string') return `request.params must be JSON-serialisable (${size})`;
    if (size > maxPayloadBytes) {
      return `request.params are ${size} bytes as JSON, more than maxPayloadBytes (${maxPayloadBytes})`;
    }
  }
  if (meta !== undefined) {
    if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) {
      return `request.meta must be an object (received ${describeValue(meta)})`;
    }
    for (const field of META_FIELDS) {
      const value = (meta as Record<string, unknown>)[field];
      if (value !== undefined && typeof value !== 'string') {
        return `request.meta.${field} must be a string (received ${describeValue(value)})`;
      }
    }
  }
  return undefined;
}

/** @internal Size in bytes of `value` as JSON, or why it has none (BigInt, cycle, function…). */
export function jsonSize(value: unknown): number | string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (json === undefined) return `${describeValue(value)} has no JSON form`;
  return Buffer.byteLength(json);
}
