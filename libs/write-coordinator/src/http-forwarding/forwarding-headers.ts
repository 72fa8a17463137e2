import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';

/**
 * The headers of HTTP forwarding to the primary (see `PrimaryForwardingInterceptor`), lower case:
 * - `forwarded`: set on a request a host forwards to the primary, to this host's name. A request
 *   carrying it is never forwarded again (a host that is not the primary answers it 503 `NOT_PRIMARY`).
 * - `txid`: set by the primary on its answer to a selected or forwarded request, to its
 *   replication position (LiteFS TXID) after the handler; only when it has one.
 * - `stale`: `1` on an answer the forwarding host sent before its own position reached `txid`
 *   (after `readYourWritesMs`): a read on that host may not see the write yet.
 */
export const WRITE_COORDINATOR_FORWARDING_HEADERS = Object.freeze({
  forwarded: 'x-write-coordinator-forwarded',
  txid: 'x-write-coordinator-txid',
  stale: 'x-write-coordinator-stale',
} as const);

/** Hop-by-hop headers (RFC 9110 §7.6.1 and the usual legacy ones): they belong to one connection. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** The headers of `headers` that are not hop-by-hop (nor named by its own `Connection` header). */
function endToEnd(headers: IncomingHttpHeaders, alsoDrop: readonly string[]): OutgoingHttpHeaders {
  const named = String(headers.connection ?? '')
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter((token) => token !== '');
  const drop = new Set([...HOP_BY_HOP, ...named, ...alsoDrop]);
  const kept: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !drop.has(name)) kept[name] = value;
  }
  return kept;
}

/**
 * @internal The headers a forwarded request carries: the client's end-to-end headers (without
 * `host`, which becomes the primary's, and `expect`, which this host already answered), the
 * `X-Forwarded-*` trio (appended to, or kept when the client's proxy set them), and
 * {@link WRITE_COORDINATOR_FORWARDING_HEADERS}.forwarded. `bodyHeaders` replace the body's own
 * (`content-length`, `content-type`, `content-encoding`) when the body is sent re-encoded.
 */
export function forwardedRequestHeaders(
  request: IncomingMessage,
  hostname: string,
  bodyHeaders: OutgoingHttpHeaders | undefined,
): OutgoingHttpHeaders {
  const bodyHeaderNames = bodyHeaders ? ['content-length', 'content-type', 'content-encoding'] : [];
  const headers = endToEnd(request.headers, ['host', 'expect', ...bodyHeaderNames]);
  const client = request.socket.remoteAddress;
  const previous = request.headers['x-forwarded-for'];
  if (client !== undefined) headers['x-forwarded-for'] = previous ? `${String(previous)}, ${client}` : client;
  if (request.headers['x-forwarded-host'] === undefined && request.headers.host !== undefined) {
    headers['x-forwarded-host'] = request.headers.host;
  }
  if (request.headers['x-forwarded-proto'] === undefined) {
    headers['x-forwarded-proto'] = 'encrypted' in request.socket && request.socket.encrypted ? 'https' : 'http';
  }
  headers[WRITE_COORDINATOR_FORWARDING_HEADERS.forwarded] = hostname;
  if (!bodyHeaders) {
    // The body is piped as it comes: its framing must travel with it, whatever the client's
    // Connection header names (a body sent unframed would be read by the primary as a next request).
    const length = request.headers['content-length'];
    if (length !== undefined) headers['content-length'] = length;
    else if (request.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
  }
  return { ...headers, ...bodyHeaders };
}

/** @internal The headers of the primary's answer that the forwarding host passes on to its client. */
export function forwardedResponseHeaders(response: IncomingMessage): OutgoingHttpHeaders {
  return endToEnd(response.headers, []);
}
