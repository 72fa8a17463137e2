import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { ForwardedBody, ParsedRequest } from './forwarded-body';

/** @internal One request to send to the primary (see {@link forwardRequest}). */
export interface PrimaryRequest {
  /** The full URL on the primary (its base URL + the client's path and query). */
  readonly url: URL;
  readonly method: string;
  readonly headers: http.OutgoingHttpHeaders;
  /** The client's request, whose body is piped when {@link body} is a `stream`. */
  readonly source: ParsedRequest;
  readonly body: ForwardedBody;
  /** How long the primary may take to send its status and headers. */
  readonly timeoutMs: number;
  /** Aborted when the client went away: the request to the primary is dropped too. */
  readonly signal: AbortSignal;
}

/**
 * @internal What came of a {@link PrimaryRequest}: the primary's answer (its body still to read),
 * or no answer, with what can be said about the write: `sent: false` when the connection to the
 * primary was never established (nothing reached it: the write certainly did not run), `true`
 * otherwise (it may have run); `timedOut` when {@link PrimaryRequest.timeoutMs} passed.
 */
export type PrimaryOutcome =
  | { readonly answered: true; readonly response: http.IncomingMessage }
  | { readonly answered: false; readonly sent: boolean; readonly timedOut: boolean; readonly cause: Error };

/**
 * @internal Sends `request` to the primary with Node's `http` or `https` (after the URL's scheme,
 * through the global agent) and resolves once its status and headers arrived, or once it failed.
 * Never rejects. The body is streamed (a `stream` body is piped, not buffered).
 */
export function forwardRequest(request: PrimaryRequest): Promise<PrimaryOutcome> {
  return new Promise((resolve) => {
    const client = request.url.protocol === 'https:' ? https : http;
    let connected = false;
    let timedOut = false;
    const outgoing = client.request(request.url, {
      method: request.method,
      headers: request.headers,
      signal: request.signal,
    });
    const giveUp = (why: string) => {
      timedOut = true;
      outgoing.destroy(new Error(why));
    };
    // The primary's time starts once the whole request is sent (a client's slow upload is not its
    // time); meanwhile a connection that moves nothing for as long is given up too.
    let timer: NodeJS.Timeout | undefined;
    outgoing.once('finish', () => {
      timer = setTimeout(() => giveUp(`the primary sent no answer within ${request.timeoutMs} ms`), request.timeoutMs);
    });
    outgoing.setTimeout(request.timeoutMs, () =>
      giveUp(`the connection to the primary moved nothing for ${request.timeoutMs} ms`),
    );
    outgoing.once('socket', (socket: Socket) => {
      // A reused keep-alive socket is connected already; a new one once its TCP (and TLS) handshake is done.
      if (!socket.connecting) connected = true;
      else socket.once(client === https ? 'secureConnect' : 'connect', () => (connected = true));
    });
    outgoing.once('response', (response) => {
      clearTimeout(timer);
      outgoing.setTimeout(0); // the body that follows is not limited
      resolve({ answered: true, response });
    });
    // `on`, not `once`: a second error (the pipe's, after a timeout) must not go unhandled.
    outgoing.on('error', (cause) => {
      clearTimeout(timer);
      resolve({ answered: false, sent: connected, timedOut, cause });
    });
    if (request.body.kind === 'bytes') {
      outgoing.end(request.body.bytes);
    } else {
      request.source.once('error', (error) => outgoing.destroy(error));
      request.source.pipe(outgoing);
    }
  });
}
