import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { assertMaxFrameBytes } from './frame-codec';
import { secretsMatch } from './protocol';
import { SocketFrameChannel } from './socket-frame-channel';
import { SocketFrameServer } from './socket-frame-server';
import type { ClusterTransport, FrameChannel, FrameServer } from './transport';

/** The `Upgrade` token of the cluster protocol over HTTP: length-prefixed JSON frames, no WebSocket framing. */
export const HTTP_UPGRADE_PROTOCOL = 'write-coordinator/1';

/** The most bytes of a refusal's body a connecting node reads (for the error message). */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** How long a refused connection may take to read its refusal before it is destroyed. */
const REFUSAL_GRACE_MS = 1_000;

/** A secret that survives an HTTP header unchanged: printable ASCII, inner spaces only. */
const HEADER_SAFE_SECRET = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;

/** Options of an {@link HttpTransport}. */
export interface HttpTransportOptions {
  /** Port the primary listens on (0: any free port; {@link HttpTransport.address} then shows the one bound). */
  port: number;
  /** Address the primary binds (e.g. `0.0.0.0`). */
  host: string;
  /** Path of the endpoint, starting with `/` (e.g. `/_write-coordinator`). */
  path: string;
  /**
   * HTTPS: the primary serves with `key` and `cert` (PEM); a connecting node verifies the primary's
   * certificate against `ca` (default: the system's). Without it, plain HTTP.
   */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
  /** Shared by every node; sent as `Authorization: Bearer <secret>`. Printable ASCII, no outer spaces. */
  secret: string;
  /** The largest JSON body of a frame, both ways (see `maxFrameBytesFor`). */
  maxFrameBytes: number;
  /** The full URL of the primary's endpoint now (e.g. `http://node-b:20210/_write-coordinator`), or undefined when none is known. */
  target: () => string | undefined;
  /**
   * How long a client may take to send a whole request that is not upgraded (headers and body), and
   * the headers of an upgrade. Upgraded connections have no timeout: the protocol has heartbeats.
   * @default 10000
   */
  requestTimeoutMs?: number;
}

/**
 * The cluster's transport between hosts: the cluster protocol (length-prefixed JSON frames, see
 * `frame-codec.ts`) over an HTTP/1.1 connection upgraded to {@link HTTP_UPGRADE_PROTOCOL}, the way a
 * WebSocket starts but without its framing. A node connects with
 * `GET <path>`, `Connection: Upgrade`, `Upgrade: write-coordinator/1`, `Authorization: Bearer <secret>`;
 * the primary answers `101 Switching Protocols` and both sides then speak frames on the socket.
 *
 * Refusals are JSON `{ code, message }`: `401` (wrong or missing secret), `400` (another upgrade
 * token), `405` (an upgrade that is not a GET), `426` (a plain request on the path), `404` (another
 * path). Channels are named `http://<host>:<port>#<n>`: the
 * primary's origin on a connecting node, the connecting node's address on the primary.
 */
export class HttpTransport implements ClusterTransport {
  private readonly options: Required<Omit<HttpTransportOptions, 'tls'>> & Pick<HttpTransportOptions, 'tls'>;
  private boundPort: number;
  private nextPeer = 1;

  /**
   * @throws {RangeError} when `port` is not an integer from 0 to 65535, `host` is empty, `path` does
   *   not start with `/`, `secret` is empty or would not survive an HTTP header, `maxFrameBytes` is
   *   not an integer from 1 to 2^32 - 1, or `requestTimeoutMs` is not a positive integer.
   * @throws {TypeError} when `target` is not a function.
   */
  constructor(options: HttpTransportOptions) {
    const { port, host, path, secret, target, requestTimeoutMs = 10_000 } = options;
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new RangeError(`port must be an integer from 0 to 65535 (received ${String(port)}, ${typeof port})`);
    }
    if (typeof host !== 'string' || host === '') {
      throw new RangeError(`host must be a non-empty string (received ${String(host)}, ${typeof host})`);
    }
    if (typeof path !== 'string' || !path.startsWith('/')) {
      throw new RangeError(`path must be a string starting with '/' (received ${String(path)}, ${typeof path})`);
    }
    if (typeof secret !== 'string' || !HEADER_SAFE_SECRET.test(secret)) {
      throw new RangeError(
        `secret must be a non-empty string of printable ASCII without leading or trailing spaces: it travels in an HTTP header (received a ${typeof secret}${typeof secret === 'string' ? ` of ${secret.length} characters` : ''})`,
      );
    }
    assertMaxFrameBytes(options.maxFrameBytes);
    if (typeof target !== 'function') {
      throw new TypeError(`target must be a function returning the primary's URL (received ${typeof target})`);
    }
    if (!Number.isInteger(requestTimeoutMs) || requestTimeoutMs < 1) {
      throw new RangeError(
        `requestTimeoutMs must be a positive integer (received ${String(requestTimeoutMs)}, ${typeof requestTimeoutMs})`,
      );
    }
    this.options = { ...options, requestTimeoutMs };
    this.boundPort = port;
  }

  /** The URL this node listens on: `http(s)://<host>:<port><path>`, with the port actually bound once listening. */
  get address(): string {
    const scheme = this.options.tls ? 'https' : 'http';
    return `${scheme}://${hostForUrl(this.options.host)}:${this.boundPort}${this.options.path}`;
  }

  /**
   * Listens on `host:port` (HTTPS with `tls`). Each accepted upgrade is handed to `onChannel`; a
   * channel's first frames are delivered from the next turn of the event loop, so listeners attached
   * in `onChannel` (or right after it) see them.
   * @throws {Error} when binding fails, `code` kept (`EADDRINUSE`: the port is taken, `EACCES`, …).
   */
  async listen(onChannel: (channel: FrameChannel) => void): Promise<FrameServer> {
    const timeoutMs = this.options.requestTimeoutMs;
    const serverOptions: http.ServerOptions = {
      requestTimeout: timeoutMs,
      headersTimeout: timeoutMs,
      connectionsCheckingInterval: Math.min(1_000, timeoutMs),
    };
    const onRequest = (request: http.IncomingMessage, response: http.ServerResponse): void =>
      this.answerPlainRequest(request, response);
    const server = this.options.tls
      ? https.createServer({ ...serverOptions, key: this.options.tls.key, cert: this.options.tls.cert }, onRequest)
      : http.createServer(serverOptions, onRequest);
    // Every upgraded channel until it closes: server.close() leaves upgraded sockets open.
    const channels = new Set<SocketFrameChannel>();
    server.on('upgrade', (request: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      const channel = this.acceptUpgrade(request, socket, head);
      if (!channel) return;
      channels.add(channel);
      channel.onClose(() => channels.delete(channel));
      onChannel(channel);
    });
    try {
      await listenOn(server, this.options.host, this.options.port);
    } catch (error) {
      server.close();
      throw wrap(error, `cannot listen on ${this.address}`);
    }
    this.boundPort = (server.address() as net.AddressInfo).port;
    // (idle and half-read HTTP connections too: server.close() waits for them)
    return new SocketFrameServer(this.address, server, channels, () => server.closeAllConnections());
  }

  /**
   * Connects to the primary at `target()` and upgrades the connection.
   * @throws {Error} with `code`: `ENOPRIMARY` (no primary is known), `ERR_INVALID_URL` (target is not
   *   an http(s) URL), `UNAUTHORIZED` (401: wrong secret), `EHTTP<status>` (any other refusal; the
   *   message carries the status and the body's message), `EPROTO` (a 101 to another protocol),
   *   `ETIMEDOUT` (no upgrade within `timeoutMs`), or the errno / TLS code of the failure
   *   (`ECONNREFUSED`, `ENOTFOUND`, `DEPTH_ZERO_SELF_SIGNED_CERT`, …).
   */
  connect(timeoutMs: number): Promise<FrameChannel> {
    const target = this.options.target();
    if (target === undefined) {
      return Promise.reject(coded('cannot connect to the primary: no primary is known yet', 'ENOPRIMARY'));
    }
    let url: URL;
    try {
      url = new URL(target);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`unsupported ${url.protocol}`);
    } catch (error) {
      return Promise.reject(
        wrap(
          error,
          `cannot connect to the primary: target ${JSON.stringify(target)} is not an http(s) URL`,
          'ERR_INVALID_URL',
        ),
      );
    }
    // Never the URL's credentials in a message or a peer name.
    const where = `${url.origin}${url.pathname}`;
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        request.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(coded(`cannot connect to the primary at ${where}: no answer within ${timeoutMs} ms`, 'ETIMEDOUT')),
        timeoutMs,
      );
      let request: http.ClientRequest;
      try {
        request = (url.protocol === 'https:' ? https : http).request(url, {
          method: 'GET',
          agent: false,
          ca: this.options.tls?.ca,
          headers: {
            Connection: 'Upgrade',
            Upgrade: HTTP_UPGRADE_PROTOCOL,
            Authorization: `Bearer ${this.options.secret}`,
          },
        });
      } catch (error) {
        clearTimeout(timer);
        reject(wrap(error, `cannot connect to the primary at ${where}`));
        return;
      }
      request.on('error', (error) => fail(wrap(error, `cannot connect to the primary at ${where}`)));
      request.on('response', (response) => {
        void readBounded(response, MAX_ERROR_BODY_BYTES).then((body) => fail(refusalError(where, response, body)));
      });
      request.on('upgrade', (response: http.IncomingMessage, socket: Duplex, head: Buffer) => {
        const token = response.headers.upgrade ?? '';
        if (settled || !(socket instanceof net.Socket) || token.toLowerCase() !== HTTP_UPGRADE_PROTOCOL) {
          // Too late (timed out), or not the protocol asked for: fail() does nothing in the first case.
          socket.destroy();
          fail(
            coded(
              `cannot connect to the primary at ${where}: it switched to protocol ${JSON.stringify(token)}, not ${HTTP_UPGRADE_PROTOCOL}`,
              'EPROTO',
            ),
          );
          return;
        }
        settled = true;
        clearTimeout(timer);
        resolve(this.channelOver(socket, head, `${url.origin}#${this.nextPeer++}`));
      });
      request.end();
    });
  }

  /** Checks an upgrade request; answers 101 and returns its channel, or refuses it and returns undefined. */
  private acceptUpgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): SocketFrameChannel | undefined {
    const refusal = this.upgradeRefusal(request);
    if (refusal || !(socket instanceof net.Socket)) {
      refuse(socket, refusal ?? [500, 'INTERNAL', 'the connection is not a stream socket']);
      return undefined;
    }
    // The 101 and the frames `onChannel` sends at once leave in one write.
    socket.cork();
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${HTTP_UPGRADE_PROTOCOL}\r\n\r\n`,
    );
    process.nextTick(() => socket.uncork());
    const scheme = this.options.tls ? 'https' : 'http';
    return this.channelOver(
      socket,
      head,
      `${scheme}://${hostForUrl(socket.remoteAddress ?? 'unknown')}:${socket.remotePort ?? 0}#${this.nextPeer++}`,
    );
  }

  /** Why an upgrade request is refused ([status, code, message]), or undefined when it is accepted. */
  private upgradeRefusal(request: http.IncomingMessage): Refusal | undefined {
    if (pathOf(request) !== this.options.path) return notFound(request);
    const offered = (request.headers.upgrade ?? '').split(',').map((token) => token.trim().toLowerCase());
    if (!offered.includes(HTTP_UPGRADE_PROTOCOL)) {
      return [
        400,
        'BAD_UPGRADE',
        `this endpoint upgrades only to ${HTTP_UPGRADE_PROTOCOL} (offered: ${JSON.stringify(request.headers.upgrade ?? '')})`,
      ];
    }
    if (request.method !== 'GET') {
      return [405, 'METHOD_NOT_ALLOWED', `upgrade to ${HTTP_UPGRADE_PROTOCOL} with GET (received ${request.method})`];
    }
    const bearer = /^bearer (.*)$/is.exec(request.headers.authorization ?? '');
    if (!secretsMatch(this.options.secret, bearer?.[1])) {
      return [
        401,
        'UNAUTHORIZED',
        bearer
          ? 'wrong secret: every node of the cluster must be configured with the same secret'
          : 'missing credentials: send Authorization: Bearer <the cluster secret>',
      ];
    }
    return undefined;
  }

  /** Answers a request that is not an upgrade: 426 on the endpoint's path, 404 elsewhere. */
  private answerPlainRequest(request: http.IncomingMessage, response: http.ServerResponse): void {
    const [status, code, message] =
      pathOf(request) === this.options.path
        ? ([
            426,
            'UPGRADE_REQUIRED',
            `this endpoint speaks the write-coordinator cluster protocol only: send GET with Connection: Upgrade, Upgrade: ${HTTP_UPGRADE_PROTOCOL} and Authorization: Bearer <secret>`,
          ] as const)
        : notFound(request);
    const body = JSON.stringify({ code, message });
    // Closing the connection after the answer: an unread request body is never drained.
    response.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
      Connection: 'close',
      ...(status === 426 ? { Upgrade: HTTP_UPGRADE_PROTOCOL } : {}),
    });
    response.end(body);
  }

  /**
   * A channel over an upgraded socket. `head` (bytes that arrived with the HTTP head) is put back in
   * front of the stream, and reading starts at the next turn of the event loop: after the caller
   * received the channel and attached its listeners, as with a freshly connected socket.
   */
  private channelOver(socket: net.Socket, head: Buffer, peer: string): SocketFrameChannel {
    socket.pause();
    if (head.length > 0) socket.unshift(head);
    socket.setTimeout(0);
    // SocketFrameChannel's contract: it decides what to send after the peer's end (a PROTOCOL error
    // for a truncated frame), so the socket must not end itself. An HTTP client's socket is not
    // half-open by default.
    socket.allowHalfOpen = true;
    const channel = new SocketFrameChannel(socket, { peer, maxFrameBytes: this.options.maxFrameBytes });
    setImmediate(() => socket.resume());
    return channel;
  }
}

/** A refusal: HTTP status, a stable code, and a message for the connecting node's error. */
type Refusal = readonly [status: number, code: string, message: string];

/** Binds `server`, rejecting with the bind error (`EADDRINUSE`, …). */
function listenOn(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // exclusive: under node:cluster a worker's listen would otherwise be shared through the cluster master.
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Writes a JSON refusal on a socket that was not upgraded, then closes it. */
function refuse(socket: Duplex, [status, code, message]: Refusal): void {
  const body = JSON.stringify({ code, message });
  const headers = [
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Connection: close',
    ...(status === 401 ? ['WWW-Authenticate: Bearer realm="write-coordinator"'] : []),
  ];
  // A client that resets before reading its refusal is no error of this server's.
  socket.on('error', () => undefined);
  socket.end(`${headers.join('\r\n')}\r\n\r\n${body}`);
  socket.resume();
  const timer = setTimeout(() => socket.destroy(), REFUSAL_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function notFound(request: http.IncomingMessage): Refusal {
  return [404, 'NOT_FOUND', `nothing at ${JSON.stringify(pathOf(request).slice(0, 200))}`];
}

/** The path of a request's target, without its query. */
function pathOf(request: http.IncomingMessage): string {
  const target = request.url ?? '';
  const query = target.indexOf('?');
  return query < 0 ? target : target.slice(0, query);
}

/** A host as it appears in a URL (IPv6 addresses in brackets). */
function hostForUrl(host: string): string {
  return net.isIPv6(host) ? `[${host}]` : host;
}

/** Reads at most `limit` bytes of a response body; resolves with what arrived when it ends, fails or overflows. */
function readBounded(response: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const done = (): void => resolve(Buffer.concat(chunks).subarray(0, limit));
    response.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= limit) {
        response.removeAllListeners('data');
        done();
      }
    });
    response.on('end', done);
    response.on('error', done);
    response.on('aborted', done);
  });
}

/** The error of a refused upgrade: the status and the body's `message` (or its text). */
function refusalError(where: string, response: http.IncomingMessage, body: Buffer): Error {
  const status = response.statusCode ?? 0;
  const text = body.toString('utf8');
  let detail = text;
  try {
    const parsed: unknown = JSON.parse(text);
    const message = (parsed as { message?: unknown } | null)?.message;
    if (typeof message === 'string') detail = message;
  } catch {
    // Not JSON: the text itself says why.
  }
  detail = detail.replace(/\s+/g, ' ').trim().slice(0, 1_000);
  const reason = response.statusMessage ? ` ${response.statusMessage}` : '';
  return coded(
    `the primary at ${where} refused the connection: ${status}${reason}${detail ? `: ${detail}` : ''}`,
    status === 401 ? 'UNAUTHORIZED' : `EHTTP${status}`,
  );
}

function coded(message: string, code: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(message);
  error.code = code;
  return error;
}

/** `what: cause.message`, keeping the cause's `code` (or `fallbackCode` when it has none). */
function wrap(error: unknown, what: string, fallbackCode?: string): NodeJS.ErrnoException {
  const cause = error as NodeJS.ErrnoException;
  const wrapped: NodeJS.ErrnoException = new Error(`${what}: ${cause.message}`, { cause });
  const code = cause.code ?? fallbackCode;
  if (code !== undefined) wrapped.code = code;
  return wrapped;
}
