import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** What {@link HttpConnectionDrain.stopAccepting} found. */
export interface StopAcceptingResult {
  /** Keep-alive connections with no request in flight, closed at once. */
  idleClosed: number;
  /** Connections with a request in flight: they close after their response. */
  busy: number;
}

/**
 * @internal Closes an HTTP server the way orchestrators expect, in steps, without Nest:
 * {@link announceClose} (every response from now on carries `Connection: close`, so keep-alive
 * clients reconnect, elsewhere once the load balancer has noticed), {@link stopAccepting} (no new
 * connections; idle keep-alive ones are closed, busy ones close after their response) and
 * {@link closeAll} (the end of the grace: whatever is still open is destroyed).
 *
 * Node's `server.close()` alone waits for every keep-alive connection, and a client that keeps
 * sending on one keeps it busy for ever: that is what this class bounds. One instance per server
 * (see {@link HttpConnectionDrain.of}); it must be installed before the server accepts connections.
 */
export class HttpConnectionDrain {
  private static readonly byServer = new WeakMap<Server, HttpConnectionDrain>();

  /** Every open connection (Node keeps no public list of them). */
  private readonly sockets = new Set<Socket>();
  /** Responses not yet finished, so that shutdown can mark the ones whose headers are unsent. */
  private readonly inFlight = new Set<ServerResponse>();
  private closing = false;
  private stopped = false;
  private closed: Promise<void> | undefined;

  private constructor(private readonly server: Server) {
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // Prepended: it must run before the app's handler can send the headers.
    server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
      if (this.closing) res.setHeader('Connection', 'close');
      this.inFlight.add(res);
      res.once('close', () => {
        this.inFlight.delete(res);
        // A response begun before the shutdown kept its connection alive: close it once idle.
        if (this.stopped) setImmediate(() => this.server.closeIdleConnections());
      });
    });
  }

  /** The drain of `server`, installed on first use. */
  static of(server: Server): HttpConnectionDrain {
    let drain = HttpConnectionDrain.byServer.get(server);
    if (!drain) {
      drain = new HttpConnectionDrain(server);
      HttpConnectionDrain.byServer.set(server, drain);
    }
    return drain;
  }

  /** Whether `value` looks like a Node HTTP server this class can drain. */
  static canDrain(value: unknown): value is Server {
    const server = value as Partial<Server> | undefined;
    return (
      typeof server?.on === 'function' &&
      typeof server.prependListener === 'function' &&
      typeof server.closeIdleConnections === 'function' &&
      typeof server.closeAllConnections === 'function'
    );
  }

  /** Open connections now. */
  get openConnections(): number {
    return this.sockets.size;
  }

  /**
   * After {@link stopAccepting}: resolves once the server has stopped listening and its last
   * connection has closed (at once if it was not listening).
   */
  whenClosed(): Promise<void> {
    return this.closed ?? Promise.resolve();
  }

  /** From now on every response, including those in flight whose headers are unsent, ends its connection. */
  announceClose(): void {
    this.closing = true;
    for (const res of this.inFlight) {
      if (!res.headersSent) res.setHeader('Connection', 'close');
    }
  }

  /** Stops accepting connections and closes the idle keep-alive ones. */
  stopAccepting(): StopAcceptingResult {
    this.announceClose();
    this.stopped = true;
    const busySockets = new Set([...this.inFlight].map((res) => res.socket));
    const idle = [...this.sockets].filter((socket) => !busySockets.has(socket)).length;
    if (this.server.listening) {
      this.closed = new Promise((resolve) => this.server.once('close', () => resolve()));
      this.server.close();
    }
    this.server.closeIdleConnections();
    return { idleClosed: idle, busy: this.sockets.size - idle };
  }

  /** Destroys every connection still open; returns how many there were. */
  closeAll(): number {
    const open = this.sockets.size;
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    return open;
  }
}
