// Imported first by core-only.ts: makes every @nestjs/* package unresolvable from here on, as in a
// project that never installed Nest, and records what was asked for.
// eslint-disable-next-line @typescript-eslint/no-require-imports
import Module = require('node:module');

type Resolve = (request: string, ...rest: unknown[]) => string;
const loader = Module as unknown as { _resolveFilename: Resolve };
const resolve = loader._resolveFilename;

/** Every @nestjs/* request refused so far. */
export const blocked: string[] = [];

loader._resolveFilename = function (this: unknown, request: string, ...rest: unknown[]) {
  if (request.startsWith('@nestjs/')) {
    blocked.push(request);
    throw Object.assign(new Error(`Cannot find module '${request}' (hidden)`), { code: 'MODULE_NOT_FOUND' });
  }
  return resolve.call(this, request, ...rest);
};
