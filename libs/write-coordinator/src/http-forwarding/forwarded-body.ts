import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';

/** An incoming request as Express (and Nest's body parsers) leave it. */
export interface ParsedRequest extends IncomingMessage {
  /** What a body parser made of the body (Nest's `json`, `urlencoded`, `text` or `raw` parsers). */
  body?: unknown;
  /** The body's bytes as received (decompressed), when the app was created with `rawBody: true`. */
  rawBody?: Buffer;
}

/**
 * @internal How a request's body is sent on to the primary:
 * - `stream`: nobody read it yet (no body parser took its content type, or it has none): piped
 *   through as it arrives, with its own `content-length` / `content-encoding`;
 * - `bytes`: a body parser read it already: its exact bytes (`req.rawBody`, with `rawBody: true`)
 *   or the parsed value encoded again, with the `headers` that now describe it.
 */
export type ForwardedBody =
  | { readonly kind: 'stream' }
  | { readonly kind: 'bytes'; readonly bytes: Buffer; readonly headers: OutgoingHttpHeaders };

/**
 * A body a parser consumed that can be neither sent as received (no `rawBody`) nor encoded again
 * (a content type other than JSON, urlencoded form, text or raw bytes): the app must be created
 * with `rawBody: true` for it.
 */
export class UnforwardableBodyError extends Error {
  constructor(readonly contentType: string) {
    super(
      `the body (${contentType || 'no content type'}) was already read by a body parser and cannot be ` +
        'encoded again; create the app with NestFactory.create(AppModule, { rawBody: true }) to forward it as received',
    );
    this.name = 'UnforwardableBodyError';
  }
}

/**
 * @internal Decides how the body of `request` is forwarded (see {@link ForwardedBody}). A parsed
 * body is re-encoded as UTF-8: JSON with `JSON.stringify`, a urlencoded form in bracket notation
 * (`a[b]=1&list=x&list=y`, what Express's `extended` parser reads back), a string as it is, a
 * Buffer as it is; what `JSON.stringify` would change (dates, `undefined`) is then changed.
 * @throws {UnforwardableBodyError} when the body was consumed and none of these applies.
 */
export function forwardedBody(request: ParsedRequest): ForwardedBody {
  if (!request.readableDidRead && !request.readableEnded) return { kind: 'stream' };
  const contentType = String(request.headers['content-type'] ?? '');
  if (Buffer.isBuffer(request.rawBody)) return bytes(request.rawBody, contentType);
  const mediaType = contentType.split(';')[0].trim().toLowerCase();
  const body = request.body;
  if (body === undefined) return bytes(Buffer.alloc(0), contentType);
  if (Buffer.isBuffer(body)) return bytes(body, contentType);
  if (typeof body === 'string') return bytes(Buffer.from(body, 'utf8'), withUtf8(mediaType));
  if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
    return bytes(Buffer.from(JSON.stringify(body), 'utf8'), withUtf8(mediaType));
  }
  if (mediaType === 'application/x-www-form-urlencoded' && typeof body === 'object' && body !== null) {
    return bytes(Buffer.from(encodeForm(body), 'utf8'), withUtf8(mediaType));
  }
  throw new UnforwardableBodyError(contentType);
}

function bytes(body: Buffer, contentType: string): ForwardedBody {
  const headers: OutgoingHttpHeaders = { 'content-length': body.length };
  if (contentType !== '') headers['content-type'] = contentType;
  return { kind: 'bytes', bytes: body, headers };
}

function withUtf8(mediaType: string): string {
  return `${mediaType}; charset=utf-8`;
}

/** `{ a: { b: 1 }, list: ['x', 'y'] }` → `a%5Bb%5D=1&list=x&list=y`. */
function encodeForm(value: object): string {
  const pairs: [string, string][] = [];
  const add = (key: string, item: unknown): void => {
    if (item === undefined) return;
    if (Array.isArray(item)) {
      const flat = item.every((element) => element === null || typeof element !== 'object');
      item.forEach((element, index) => add(flat ? key : `${key}[${index}]`, element));
    } else if (item !== null && typeof item === 'object') {
      for (const [name, nested] of Object.entries(item)) add(`${key}[${name}]`, nested);
    } else {
      pairs.push([key, item === null ? '' : String(item)]);
    }
  };
  for (const [name, item] of Object.entries(value)) add(name, item);
  return new URLSearchParams(pairs).toString();
}
