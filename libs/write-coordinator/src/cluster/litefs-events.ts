/**
 * A client of LiteFS's event stream (`GET http://localhost:20202/events`): one long HTTP response
 * of newline-delimited JSON, `init` first, then `tx` (a transaction applied to a database) and
 * `primaryChange`. LiteFS drops a subscriber that reads too slowly by ending the response, and the
 * stream is gone while LiteFS restarts: this client reconnects with a backoff and says whether it
 * is connected, so its users know when to fall back to polling the mount's files.
 *
 * The stream is read defensively: a line over 64 KiB, a line that is not JSON or a known event
 * missing a field is skipped (warned once per connection), an unknown event type is ignored.
 */
import { ClientRequest, IncomingMessage, request } from 'node:http';
import { InvalidOptionsError } from '../errors';
import { ClusterLog } from './cluster-log';

/** One event of the stream, as this library uses it. */
export type LiteFsEvent =
  /** The first event of every connection: this node's role now. */
  | { readonly type: 'init'; readonly isPrimary: boolean; readonly hostname: string }
  /** The role changed: `hostname` is the primary's (`''` when no primary is known: cut off). */
  | { readonly type: 'primaryChange'; readonly isPrimary: boolean; readonly hostname: string }
  /** A transaction was applied to database `db` (its name in the mount); `txid` is its TXID. */
  | { readonly type: 'tx'; readonly db: string; readonly txid: number };

/** What a subscriber of {@link LiteFsEvents} hears. Both are optional; a throwing one is logged. */
export interface LiteFsEventsListener {
  /** Called for each event, in stream order. */
  event?(event: LiteFsEvent): void;
  /** Called when the stream is established (true) or lost (false). */
  connection?(connected: boolean): void;
}

/** Construction options of {@link LiteFsEvents}. */
export interface LiteFsEventsOptions {
  /** The event stream's URL (`http:` only: LiteFS serves it on localhost). */
  readonly url: string;
  /** Where skipped lines and lost connections are reported. */
  readonly log: ClusterLog;
  /** First delay before reconnecting, doubled after each failed attempt. @default 50 */
  readonly minBackoffMs?: number;
  /** Longest delay before reconnecting. @default 2000 */
  readonly maxBackoffMs?: number;
  /** How long a connection attempt may wait for the response's headers. @default 2000 */
  readonly connectTimeoutMs?: number;
}

/** Longest line kept, in bytes; a longer one is skipped. */
const MAX_LINE_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * Parses a LiteFS TXID (16 hex digits, as in `<db>-pos` and in `tx` events).
 *
 * @returns the TXID, or undefined when `hex` is not 16 hex digits or its value is above
 *   `Number.MAX_SAFE_INTEGER` (2^53 − 1: a TXID counts transactions one by one, so a larger one
 *   means a corrupt value rather than a real position, and a JS number could not hold it exactly).
 */
export function parseLiteFsTxid(hex: string): number | undefined {
  if (!/^[0-9a-fA-F]{16}$/.test(hex)) return undefined;
  const value = Number.parseInt(hex, 16);
  return Number.isSafeInteger(value) ? value : undefined;
}

/**
 * One LiteFS event stream, shared by every user on this node (the election, the positions). It
 * connects when it gets its first subscriber and closes when the last one leaves (or on
 * {@link stop}); in between, it reconnects after every end or failure, from `minBackoffMs` doubling
 * up to `maxBackoffMs` (reset once a connection is established).
 *
 * @example
 * const events = new LiteFsEvents({ url: 'http://localhost:20202/events', log });
 * const unsubscribe = events.subscribe({ event: (e) => console.log(e), connection: (up) => … });
 * // …
 * unsubscribe();
 */
export class LiteFsEvents {
  private readonly url: URL;
  private readonly log: ClusterLog;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly connectTimeoutMs: number;
  private readonly listeners = new Set<LiteFsEventsListener>();
  /**
   * At most one of these three is set: the attempt in flight or the open stream ({@link current}),
   * or the pending reconnection ({@link retryTimer}). All are cleared when nobody listens.
   */
  private current: Connection | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private backoffMs: number;
  /** Whether the failure streak in progress was reported already (one warning per outage). */
  private outageReported = false;
  private isConnected = false;
  /** The last `init` / `primaryChange` of the open connection (replayed to late subscribers). */
  private lastRole: LiteFsEvent | undefined;

  /** @throws {InvalidOptionsError} when `url` is not an `http:` URL. */
  constructor(options: LiteFsEventsOptions) {
    let url: URL | undefined;
    try {
      url = new URL(options.url);
    } catch {
      url = undefined;
    }
    if (url?.protocol !== 'http:') {
      throw new InvalidOptionsError('cluster.primary.eventsUrl', 'an http: URL', options.url);
    }
    this.url = url;
    this.log = options.log;
    this.minBackoffMs = options.minBackoffMs ?? 50;
    this.maxBackoffMs = options.maxBackoffMs ?? 2_000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 2_000;
    this.backoffMs = this.minBackoffMs;
  }

  /** True while a response of the stream is open (events may arrive). */
  get connected(): boolean {
    return this.isConnected;
  }

  /**
   * Adds a listener; the first one opens the stream. A listener added while the stream is open
   * hears the last `init` / `primaryChange` of this connection at once (synchronously), so that it
   * knows the role without waiting for the next change.
   *
   * @returns a function that removes this listener (the last removal closes the stream).
   */
  subscribe(listener: LiteFsEventsListener): () => void {
    this.listeners.add(listener);
    if (this.current === undefined && this.retryTimer === undefined) this.connect();
    const role = this.lastRole;
    if (this.isConnected && role !== undefined) this.notify((l) => l === listener && l.event?.(role));
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Removes every listener and closes the stream: no socket and no timer is left. Idempotent. */
  stop(): void {
    this.listeners.clear();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const connection = this.current;
    this.current = undefined;
    connection?.close();
    this.isConnected = false;
    this.lastRole = undefined;
    this.backoffMs = this.minBackoffMs;
    this.outageReported = false;
  }

  private connect(): void {
    this.retryTimer = undefined;
    this.current = new Connection(this.url, this.connectTimeoutMs, this.log, {
      opened: () => this.opened(),
      event: (event) => {
        if (event.type !== 'tx') this.lastRole = event;
        this.notify((listener) => listener.event?.(event));
      },
      closed: (reason) => this.closed(reason),
    });
  }

  private opened(): void {
    this.isConnected = true;
    this.backoffMs = this.minBackoffMs;
    if (this.outageReported) this.log.log(`LiteFS event stream ${this.url.href}: connected again`);
    this.outageReported = false;
    this.notify((listener) => listener.connection?.(true));
  }

  private closed(reason: string): void {
    this.current = undefined;
    const wasConnected = this.isConnected;
    this.isConnected = false;
    this.lastRole = undefined;
    if (!this.outageReported) {
      this.log.warn(`LiteFS event stream ${this.url.href}: ${reason}; reconnecting`);
      this.outageReported = true;
    }
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    if (wasConnected) this.notify((listener) => listener.connection?.(false));
  }

  /** Calls every listener; one that throws is logged and the others still hear it. */
  private notify(call: (listener: LiteFsEventsListener) => void): void {
    for (const listener of [...this.listeners]) {
      try {
        call(listener);
      } catch (error) {
        this.log.error('LiteFS event stream: a listener threw', error);
      }
    }
  }
}

/** What a {@link Connection} tells its owner. */
interface ConnectionHandlers {
  opened(): void;
  event(event: LiteFsEvent): void;
  /** Called once, when the stream ended or failed (never after {@link Connection.close}). */
  closed(reason: string): void;
}

/** One HTTP request of the stream and the line splitter of its response. */
class Connection {
  private readonly request: ClientRequest;
  private response: IncomingMessage | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private done = false;
  /** The bytes of the line being read, and their total length. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** True while the rest of an over-long line is being thrown away. */
  private skipping = false;
  private warned = false;

  constructor(
    url: URL,
    connectTimeoutMs: number,
    private readonly log: ClusterLog,
    private readonly handlers: ConnectionHandlers,
  ) {
    this.request = request(url, { agent: false, headers: { accept: 'application/x-ndjson' } });
    this.connectTimer = setTimeout(() => this.fail(`no answer within ${connectTimeoutMs} ms`), connectTimeoutMs);
    this.request.on('error', (error) => this.fail(error.message));
    this.request.on('response', (response) => this.onResponse(response));
    this.request.end();
  }

  /** Closes the request and its socket without telling the owner. */
  close(): void {
    this.done = true;
    this.cleanup();
  }

  private onResponse(response: IncomingMessage): void {
    this.response = response;
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    if (response.statusCode !== 200) {
      this.fail(`HTTP ${String(response.statusCode)}`);
      return;
    }
    response.on('data', (chunk: Buffer) => this.onData(chunk));
    response.on('end', () => this.fail('the stream ended'));
    response.on('error', (error) => this.fail(error.message));
    response.on('close', () => this.fail('the connection closed'));
    this.handlers.opened();
  }

  private onData(chunk: Buffer): void {
    let start = 0;
    while (start < chunk.length && !this.done) {
      const newline = chunk.indexOf(NEWLINE, start);
      const end = newline === -1 ? chunk.length : newline;
      if (!this.skipping) {
        if (this.pendingBytes + (end - start) > MAX_LINE_BYTES) {
          this.skipping = true;
          this.pending = [];
          this.pendingBytes = 0;
          this.warn(`skipped a line longer than ${MAX_LINE_BYTES} bytes`);
        } else {
          this.pending.push(chunk.subarray(start, end));
          this.pendingBytes += end - start;
        }
      }
      if (newline === -1) return;
      if (!this.skipping) this.onLine(Buffer.concat(this.pending, this.pendingBytes).toString('utf8'));
      this.pending = [];
      this.pendingBytes = 0;
      this.skipping = false;
      start = newline + 1;
    }
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      this.warn(`skipped a line that is not JSON: ${line.slice(0, 80)}`);
      return;
    }
    const event = toEvent(value);
    if (event === 'malformed') this.warn(`skipped a malformed event: ${line.slice(0, 80)}`);
    else if (event !== undefined) this.handlers.event(event);
  }

  /** One warning per connection: a stream of garbage must not flood the log. */
  private warn(message: string): void {
    if (this.warned) return;
    this.warned = true;
    this.log.warn(`LiteFS event stream: ${message} (further bad lines on this connection are skipped silently)`);
  }

  private fail(reason: string): void {
    if (this.done) return;
    this.done = true;
    this.cleanup();
    this.handlers.closed(reason);
  }

  private cleanup(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = undefined;
    this.response?.destroy();
    this.request.destroy();
    this.pending = [];
  }
}

/** The event a parsed line describes; undefined for an unknown type, `'malformed'` for a bad known one. */
function toEvent(value: unknown): LiteFsEvent | 'malformed' | undefined {
  if (!isRecord(value) || typeof value.type !== 'string') return 'malformed';
  const data = value.data;
  switch (value.type) {
    case 'init':
    case 'primaryChange':
      if (!isRecord(data) || typeof data.isPrimary !== 'boolean') return 'malformed';
      if (data.hostname !== undefined && typeof data.hostname !== 'string') return 'malformed';
      return { type: value.type, isPrimary: data.isPrimary, hostname: data.hostname ?? '' };
    case 'tx': {
      if (typeof value.db !== 'string' || !isRecord(data) || typeof data.txID !== 'string') return 'malformed';
      const txid = parseLiteFsTxid(data.txID);
      return txid === undefined ? 'malformed' : { type: 'tx', db: value.db, txid };
    }
    default:
      return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
