import { hostname as osHostname } from 'node:os';
import { OptionCheck, validateOptions } from './core/coordinator-options';
import { InvalidOptionsError } from './errors';

/**
 * Options of {@link PrimaryForwardingInterceptor}: which requests a host that is not the primary
 * forwards, where to, and how long it waits. Every field is optional.
 */
export interface PrimaryForwardingOptions {
  /**
   * Which requests are forwarded. `'writes'`: every request whose method is not GET, HEAD or
   * OPTIONS (routes marked `@RunLocally()` excepted). `'marked'`: only the handlers, or the
   * controllers, marked `@ForwardToPrimary()` (whatever their method; `@RunLocally()` on a handler
   * opts it out of its controller's mark).
   * @default 'writes'
   */
  routes?: 'writes' | 'marked';
  /**
   * The base URL of the primary host's app (scheme, host, port, optional path prefix), from the
   * primary's hostname (what `writeTarget().primary` says: LiteFS's `.primary`, or the `static`
   * strategy's `primary`). The request's path and query are appended. `https:` URLs are served
   * through Node's `https` (the system's certificate authorities).
   * @default `http://<hostname>:<port>`
   */
  url?: (hostname: string) => string;
  /**
   * The primary app's port, when `url` is not given.
   * @default the port the request arrived on (every host runs the same app on the same port)
   */
  port?: number;
  /**
   * How long the primary may take to answer (its status and headers) before the client is told
   * 504 `TIMEOUT` (the write may have run). The body that follows is not limited.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Read your writes: once the primary answered with `x-write-coordinator-txid`, how long this host
   * waits for its own replication position to reach it before it answers its client, so that the
   * client's next read here sees the write. Past it the answer goes out anyway, with
   * `x-write-coordinator-stale: 1`. `false`: answer at once.
   * @default 5000
   */
  readYourWritesMs?: number | false;
  /**
   * This host's name, sent in `x-write-coordinator-forwarded` on forwarded requests (for the
   * primary's logs; the loop guard only looks at the header's presence).
   * @default os.hostname()
   */
  hostname?: string;
}

/** @internal {@link PrimaryForwardingOptions} after defaults and validation. */
export interface ResolvedPrimaryForwardingOptions {
  readonly routes: 'writes' | 'marked';
  /** The primary's base URL; `localPort` is the port the request arrived on (the `port` default). */
  readonly baseUrl: (primary: string, localPort: number | undefined) => string;
  readonly timeoutMs: number;
  readonly readYourWritesMs: number | false;
  readonly hostname: string;
}

const CONTEXT = 'PrimaryForwardingInterceptor';
/** Longest delay a Node timer honours (2^31 − 1 ms); a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;

const positiveMs: OptionCheck = (v) =>
  typeof v === 'number' && Number.isInteger(v) && v > 0 && v <= MAX_TIMER_MS
    ? undefined
    : `an integer number of ms from 1 to ${MAX_TIMER_MS}`;

/** One validator per option; an option missing here is unknown and refused. */
const CHECKS: Record<keyof PrimaryForwardingOptions, OptionCheck> = {
  routes: (v) => (v === 'writes' || v === 'marked' ? undefined : "'writes' or 'marked'"),
  url: (v) => (typeof v === 'function' ? undefined : 'a function (hostname) => base URL string'),
  port: (v) => (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535 ? undefined : 'a port, 1 to 65535'),
  timeoutMs: positiveMs,
  readYourWritesMs: (v) =>
    v === false || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= MAX_TIMER_MS)
      ? undefined
      : `false or an integer number of ms from 0 to ${MAX_TIMER_MS}`,
  hostname: (v) => (typeof v === 'string' && /^[\x21-\x7e]+$/.test(v) ? undefined : 'a non-empty hostname'),
};

/**
 * @internal Merges {@link PrimaryForwardingOptions} with their defaults and validates them.
 * @throws {InvalidOptionsError} naming the field, what was expected and what was received (an
 *   unknown field too; `url` and `port` together as well, since one excludes the other).
 */
export function resolvePrimaryForwardingOptions(
  options: PrimaryForwardingOptions = {},
): ResolvedPrimaryForwardingOptions {
  validateOptions(CHECKS, options, CONTEXT);
  if (options.url !== undefined && options.port !== undefined) {
    throw new InvalidOptionsError('port', 'absent when url is given (url decides the port)', options.port, CONTEXT);
  }
  const { url, port } = options;
  return Object.freeze({
    routes: options.routes ?? 'writes',
    baseUrl: url
      ? (primary: string) => checkedUrl(url(primary), primary)
      : (primary: string, localPort: number | undefined) => `http://${primary}:${port ?? localPort ?? 80}`,
    timeoutMs: options.timeoutMs ?? 30_000,
    readYourWritesMs: options.readYourWritesMs ?? 5_000,
    hostname: options.hostname ?? osHostname(),
  });
}

/**
 * The `url` option's answer, checked when it is used (it is a function of the primary's name).
 * @throws {InvalidOptionsError} when it is not an http(s) URL.
 */
function checkedUrl(value: unknown, primary: string): string {
  if (typeof value === 'string' && /^https?:\/\/[^/?#]+/i.test(value)) return value;
  throw new InvalidOptionsError(`url('${primary}')`, 'an http(s) URL string', value, CONTEXT);
}
