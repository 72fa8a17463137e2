import {
  CallHandler,
  ExecutionContext,
  HttpException,
  HttpStatus,
  Logger,
  NestInterceptor,
  StreamableFile,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { from, Observable, tap, throwError } from 'rxjs';
import type { Coordinator } from './core/coordinator';
import { FORWARD_TO_PRIMARY_METADATA } from './decorators/forward-to-primary.decorator';
import { RUN_LOCALLY_METADATA } from './decorators/run-locally.decorator';
import type { WriteErrorCode } from './errors';
import { ForwardedBody, forwardedBody, ParsedRequest, UnforwardableBodyError } from './http-forwarding/forwarded-body';
import { forwardRequest, PrimaryOutcome } from './http-forwarding/forward-request';
import {
  forwardedRequestHeaders,
  forwardedResponseHeaders,
  WRITE_COORDINATOR_FORWARDING_HEADERS as HEADERS,
} from './http-forwarding/forwarding-headers';
import type { WriteCoordinatorErrorBody } from './write-coordinator-exception.filter';
import {
  PrimaryForwardingOptions,
  resolvePrimaryForwardingOptions,
  ResolvedPrimaryForwardingOptions,
} from './write-coordinator.forwarding.options';

/** What the interceptor asks of a coordinator (a `WriteCoordinator` or a plain `Coordinator`). */
export type ForwardingCoordinator = Pick<Coordinator, 'writeTarget' | 'replicationPosition' | 'waitForPosition'>;

/** Methods that never write, hence never forwarded in `routes: 'writes'` mode. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** Seconds a client is told to wait (`Retry-After`) before retrying a retryable 503. */
const RETRY_AFTER_SECONDS = '1';

/**
 * Opt-in HTTP interceptor that makes write routes work on every host of a multi-host deployment
 * (`cluster.primary` `litefs` or `static`): on a host that is not the primary
 * (`coordinator.writeTarget().here` false, asked per request), a selected request is not handled
 * here but sent to the primary host's app — same method, path and query, the end-to-end headers
 * plus `x-write-coordinator-forwarded: <this host>` and `X-Forwarded-*`, the body — and the
 * primary's answer (status, headers, body) is streamed back to the client. On the primary, and on
 * a single host, every request runs as usual; the answer to a selected (or forwarded) request then
 * carries `x-write-coordinator-txid: <position>` when the coordinator has a replication position
 * (LiteFS). See docs/http-forwarding.md.
 *
 * Selected requests: every non-GET/HEAD/OPTIONS request (`routes: 'writes'`, the default) or only
 * the routes marked `@ForwardToPrimary()` (`routes: 'marked'`); `@ForwardToPrimary()` also
 * selects a GET route in `'writes'` mode; `@RunLocally()` opts a route out (a handler's mark wins
 * over its controller's).
 *
 * The body: nobody read it yet (no body parser took its content type) → piped as it arrives; read
 * by a parser → its exact bytes when the app was created with `rawBody: true` (recommended),
 * otherwise JSON, urlencoded forms, text and raw bodies re-encoded from `req.body` (UTF-8); any
 * other parsed body is answered 500 and logged (create the app with `rawBody: true`).
 *
 * Answers of its own (body as {@link WriteCoordinatorErrorBody}; `retryable` true only when the
 * write certainly did not run): 503 `NOT_PRIMARY` + `Retry-After` when no primary is known, or when
 * a request already forwarded once reaches a host that is not the primary (loop guard: never
 * forwarded twice); 503 `UNAVAILABLE` + `Retry-After` when the connection to the primary could
 * not be opened (retryable); 502 `UNAVAILABLE` (not retryable) when it broke before the primary
 * answered, and 504 `TIMEOUT` (not retryable) past `timeoutMs`, both of which a write may have
 * survived. Read your writes: once the primary's status and headers arrived, a host waits up to
 * `readYourWritesMs` for its own position to reach the primary's `x-write-coordinator-txid` before
 * it answers; past that it answers anyway with `x-write-coordinator-stale: 1`.
 *
 * How it answers instead of the handler: Nest (RouterExecutionContext) always hands the last value
 * of the interceptors' Observable to the HTTP adapter's `reply()`, so an interceptor that wrote to
 * the response itself would have Nest write again ("headers already sent"), or would have to never
 * complete. This one sets the primary's status and headers on the response and returns the
 * primary's body as a `StreamableFile`: the Express adapter pipes it (backpressure, not buffered),
 * keeps the headers set (it only adds those missing), leaves the status alone, and destroys the
 * stream when the client goes away. Hence: Express only (`@nestjs/platform-express`), HTTP only;
 * routes that answer through `@Res()` (without `passthrough`), `@Render()`, `@Redirect()` or
 * `@Sse()` must not be selected (mark them `@RunLocally()`). Guards run on both hosts; pipes and
 * the handler only on the primary.
 *
 * @example
 * // app.module.ts: every write route of the app, forwarded when this host is not the primary
 * providers: [{
 *   provide: APP_INTERCEPTOR,
 *   inject: [WriteCoordinator],
 *   useFactory: (coordinator: WriteCoordinator) =>
 *     new PrimaryForwardingInterceptor(coordinator, { url: (host) => `http://${host}:3000` }),
 * }]
 */
export class PrimaryForwardingInterceptor implements NestInterceptor {
  private readonly options: ResolvedPrimaryForwardingOptions;
  private readonly reflector = new Reflector();
  private readonly logger = new Logger('PrimaryForwardingInterceptor');

  /**
   * @param coordinator the app's coordinator (`WriteCoordinator`, or a named one).
   * @param options see {@link PrimaryForwardingOptions}.
   * @throws {InvalidOptionsError} when an option is invalid or unknown (field, expected, received).
   */
  constructor(
    private readonly coordinator: ForwardingCoordinator,
    options: PrimaryForwardingOptions = {},
  ) {
    this.options = resolvePrimaryForwardingOptions(options);
  }

  /** @internal Called by Nest for each request of the routes it applies to. */
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<ParsedRequest & { originalUrl?: string }>();
    const response = context.switchToHttp().getResponse<ServerResponse>();
    const forwarded = request.headers[HEADERS.forwarded] !== undefined;
    const selected = this.selects(context, request.method ?? 'GET');
    const target = this.coordinator.writeTarget();
    if (target.here) {
      if (!selected && !forwarded) return next.handle();
      const addPosition = (): void => this.addPosition(response);
      return next.handle().pipe(tap({ next: addPosition, error: addPosition }));
    }
    // Not a route this interceptor forwards (a read, @RunLocally): it runs here, whatever headers came.
    if (!selected) return next.handle();
    if (forwarded) {
      const by = String(request.headers[HEADERS.forwarded]);
      return refuse(
        response,
        HttpStatus.SERVICE_UNAVAILABLE,
        'NOT_PRIMARY',
        true,
        notPrimary(target.primary, by),
        target.primary,
      );
    }
    if (target.primary === undefined) {
      return refuse(response, HttpStatus.SERVICE_UNAVAILABLE, 'NOT_PRIMARY', true, notPrimary(undefined));
    }
    return from(this.forward(request, response, target.primary));
  }

  /** Whether the route of `context` is forwarded: its marks (handler first), else the method. */
  private selects(context: ExecutionContext, method: string): boolean {
    for (const target of [context.getHandler(), context.getClass()]) {
      if (this.reflector.get<boolean | undefined>(RUN_LOCALLY_METADATA, target)) return false;
      if (this.reflector.get<boolean | undefined>(FORWARD_TO_PRIMARY_METADATA, target)) return true;
    }
    return this.options.routes === 'writes' && !SAFE_METHODS.has(method.toUpperCase());
  }

  /** On the primary: the position after the handler, for the forwarding host to wait for. */
  private addPosition(response: ServerResponse): void {
    const position = this.coordinator.replicationPosition();
    if (position !== undefined && !response.headersSent) response.setHeader(HEADERS.txid, String(position));
  }

  /**
   * Sends the request to `primary`, waits for its status and headers (and for this host's position),
   * copies them onto `response`, and hands back its body to stream (nothing for an answer without one).
   */
  private async forward(
    request: ParsedRequest & { originalUrl?: string },
    response: ServerResponse,
    primary: string,
  ): Promise<StreamableFile | undefined> {
    const body = this.bodyOf(request);
    const base = this.options.baseUrl(primary, request.socket.localPort);
    const url = new URL(base.replace(/\/+$/, '') + (request.originalUrl ?? request.url ?? '/'));
    const gone = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) gone.abort();
    });
    const outcome = await forwardRequest({
      url,
      method: request.method ?? 'GET',
      headers: forwardedRequestHeaders(
        request,
        this.options.hostname,
        body.kind === 'bytes' ? body.headers : undefined,
      ),
      source: request,
      body,
      timeoutMs: this.options.timeoutMs,
      signal: gone.signal,
    });
    if (!outcome.answered) throw this.failure(outcome, primary, response);
    const upstream = outcome.response;
    const caughtUp = await this.waitForPrimaryPosition(upstream, gone.signal);
    response.statusCode = upstream.statusCode ?? HttpStatus.BAD_GATEWAY;
    for (const [name, value] of Object.entries(forwardedResponseHeaders(upstream))) {
      if (value !== undefined) response.setHeader(name, value);
    }
    if (!caughtUp) response.setHeader(HEADERS.stale, '1');
    if (request.method === 'HEAD' || upstream.statusCode === 204 || upstream.statusCode === 304) {
      upstream.resume();
      return undefined;
    }
    return new StreamableFile(upstream)
      .setErrorHandler((error) => this.bodyFailed(error, response))
      .setErrorLogger((error) => this.logger.warn(`the primary's answer broke off: ${String(error)}`));
  }

  /** How the body goes out; a parsed body that cannot is a configuration error (logged, 500). */
  private bodyOf(request: ParsedRequest): ForwardedBody {
    try {
      return forwardedBody(request);
    } catch (error) {
      if (!(error instanceof UnforwardableBodyError)) throw error;
      this.logger.error(`${request.method} ${request.url}: ${error.message}`);
      throw new HttpException(
        errorBody(HttpStatus.INTERNAL_SERVER_ERROR, 'INTERNAL', false, 'Internal server error'),
        HttpStatus.INTERNAL_SERVER_ERROR,
      );
    }
  }

  /** True when no wait is needed or this host caught up; false past `readYourWritesMs` (stale). */
  private async waitForPrimaryPosition(upstream: IncomingMessage, signal: AbortSignal): Promise<boolean> {
    const header = upstream.headers[HEADERS.txid];
    if (this.options.readYourWritesMs === false || typeof header !== 'string' || !/^\d+$/.test(header)) return true;
    return this.coordinator.waitForPosition(Number(header), this.options.readYourWritesMs, signal);
  }

  /** The answer to a request the primary did not answer: what can be said about the write. */
  private failure(
    outcome: Extract<PrimaryOutcome, { answered: false }>,
    primary: string,
    response: ServerResponse,
  ): HttpException {
    const { sent, timedOut, cause } = outcome;
    this.logger.warn(`forwarding to the primary ${primary} failed: ${cause.message}`);
    if (!sent) {
      const message = `the primary ${primary} could not be reached (${cause.message}); the write did not run`;
      return refusal(response, HttpStatus.SERVICE_UNAVAILABLE, 'UNAVAILABLE', true, message);
    }
    const maybe = 'the write may have run: retry only if the route is idempotent';
    if (timedOut) {
      const message = `the primary ${primary} sent no answer within ${this.options.timeoutMs} ms; ${maybe}`;
      return refusal(response, HttpStatus.GATEWAY_TIMEOUT, 'TIMEOUT', false, message);
    }
    const message = `the connection to the primary ${primary} broke before its answer (${cause.message}); ${maybe}`;
    return refusal(response, HttpStatus.BAD_GATEWAY, 'UNAVAILABLE', false, message);
  }

  /** The primary's body failed: before anything was sent, 502; midway, the client's connection is cut. */
  private bodyFailed(error: Error, response: ServerResponse): void {
    if (response.destroyed) return;
    this.logger.warn(`the primary's answer broke off: ${error.message}`);
    if (response.headersSent) {
      response.destroy();
      return;
    }
    response.statusCode = HttpStatus.BAD_GATEWAY;
    response.end();
  }
}

function notPrimary(primary: string | undefined, forwardedBy?: string): string {
  const where = primary === undefined ? 'no primary is known now' : `the primary is ${primary}`;
  const loop = forwardedBy === undefined ? '' : ` (forwarded by ${forwardedBy}; never forwarded twice)`;
  return `this host is not the primary and ${where}${loop}; the write did not run`;
}

function errorBody(
  status: number,
  code: WriteErrorCode,
  retryable: boolean,
  message: string,
  primary?: string,
): WriteCoordinatorErrorBody {
  return { statusCode: status, code, retryable, message, ...(primary === undefined ? {} : { primary }) };
}

/** An HTTP error with a {@link WriteCoordinatorErrorBody}, `Retry-After` set when retryable. */
function refusal(
  response: ServerResponse,
  status: number,
  code: WriteErrorCode,
  retryable: boolean,
  message: string,
  primary?: string,
): HttpException {
  if (retryable && !response.headersSent) response.setHeader('Retry-After', RETRY_AFTER_SECONDS);
  return new HttpException(errorBody(status, code, retryable, message, primary), status);
}

function refuse(...args: Parameters<typeof refusal>): Observable<never> {
  const error = refusal(...args);
  return throwError(() => error);
}
