import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { NotPrimaryError, WriteCoordinatorError, WriteErrorCode } from './errors';

/**
 * The HTTP status of each coordinator error code, as {@link WriteCoordinatorExceptionFilter} answers:
 * refusals that never ran are 503 (with `Retry-After` when retryable), a deadline is 504, the
 * caller's own mistakes are 4xx, and what only the server can fix is 500.
 */
export const WRITE_COORDINATOR_HTTP_STATUS: Readonly<Record<WriteErrorCode, HttpStatus>> = Object.freeze({
  QUEUE_FULL: HttpStatus.SERVICE_UNAVAILABLE,
  DRAINING: HttpStatus.SERVICE_UNAVAILABLE,
  SHUTDOWN: HttpStatus.SERVICE_UNAVAILABLE,
  COORDINATOR_NOT_READY: HttpStatus.SERVICE_UNAVAILABLE,
  BUSY: HttpStatus.SERVICE_UNAVAILABLE,
  CANCELLED: HttpStatus.SERVICE_UNAVAILABLE,
  UNAVAILABLE: HttpStatus.SERVICE_UNAVAILABLE,
  NOT_PRIMARY: HttpStatus.SERVICE_UNAVAILABLE,
  TIMEOUT: HttpStatus.GATEWAY_TIMEOUT,
  REPLICATION_TIMEOUT: HttpStatus.GATEWAY_TIMEOUT,
  CONFLICT: HttpStatus.CONFLICT,
  INVALID_PARAMS: HttpStatus.BAD_REQUEST,
  METHOD_NOT_FOUND: HttpStatus.NOT_FOUND,
  INVALID_OPTIONS: HttpStatus.INTERNAL_SERVER_ERROR,
  INTERNAL: HttpStatus.INTERNAL_SERVER_ERROR,
  WRITE_OUTSIDE_JOB: HttpStatus.INTERNAL_SERVER_ERROR,
  TRANSACTION_CONTROL: HttpStatus.INTERNAL_SERVER_ERROR,
});

/** The JSON body {@link WriteCoordinatorExceptionFilter} answers with. */
export interface WriteCoordinatorErrorBody {
  /** The HTTP status, repeated in the body as Nest's own errors do. */
  statusCode: number;
  /** The error's stable code: what a client branches on. */
  code: WriteErrorCode;
  /** True only when the write certainly did not take effect and retrying may succeed. */
  retryable: boolean;
  /** The error's message; `'Internal server error'` for a 500, whose details go to the log only. */
  message: string;
  /** `NOT_PRIMARY` only: the primary's hostname, when known. */
  primary?: string;
}

/** Seconds a client is told to wait (`Retry-After`) before retrying a retryable 503. */
const RETRY_AFTER_SECONDS = '1';

/**
 * Opt-in exception filter that answers every {@link WriteCoordinatorError} reaching an HTTP route
 * with the status of {@link WRITE_COORDINATOR_HTTP_STATUS} and a {@link WriteCoordinatorErrorBody}:
 * 503 with `Retry-After: 1` for retryable refusals (`QUEUE_FULL`, `DRAINING`, `SHUTDOWN`,
 * `COORDINATOR_NOT_READY`, `BUSY`, `CANCELLED`, `UNAVAILABLE`, `NOT_PRIMARY` — whose body also names the
 * `primary` —), 504 for `TIMEOUT` and `REPLICATION_TIMEOUT`, 409 for `CONFLICT`, 400 for
 * `INVALID_PARAMS`, 404 for `METHOD_NOT_FOUND`, and 500 for the rest (logged, message withheld as
 * Nest does for unknown errors). Other errors (your `HttpException`s included) are not caught.
 * Works on Express and Fastify alike (it answers through the app's HTTP adapter); HTTP only.
 *
 * @example
 * // main.ts, for the whole app
 * app.useGlobalFilters(new WriteCoordinatorExceptionFilter(app.get(HttpAdapterHost)));
 * // or as a provider (dependency injection supplies the adapter)
 * providers: [{ provide: APP_FILTER, useClass: WriteCoordinatorExceptionFilter }]
 */
@Catch(WriteCoordinatorError)
export class WriteCoordinatorExceptionFilter implements ExceptionFilter<WriteCoordinatorError> {
  private readonly logger = new Logger('WriteCoordinatorExceptionFilter');

  /** @param adapterHost the app's `HttpAdapterHost` (`app.get(HttpAdapterHost)`), injected when a provider. */
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  /** @internal Called by Nest with an error thrown by a route handler (or a guard, pipe, interceptor). */
  catch(error: WriteCoordinatorError, host: ArgumentsHost): void {
    // HTTP only: registered with APP_FILTER it also sees GraphQL resolvers, gateways and
    // microservices, whose errors are theirs to map. Re-thrown as it came.
    if (host.getType() !== 'http') throw error;
    const { httpAdapter } = this.adapterHost;
    const response: unknown = host.switchToHttp().getResponse();
    const status = WRITE_COORDINATOR_HTTP_STATUS[error.code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
    const internal = status === HttpStatus.INTERNAL_SERVER_ERROR;
    if (internal) this.logger.error(error.message, error.stack);
    if (status === HttpStatus.SERVICE_UNAVAILABLE && error.retryable) {
      httpAdapter.setHeader(response, 'Retry-After', RETRY_AFTER_SECONDS);
    }
    const body: WriteCoordinatorErrorBody = {
      statusCode: status,
      code: error.code,
      retryable: error.retryable,
      message: internal ? 'Internal server error' : error.message,
      ...(error instanceof NotPrimaryError && error.primary !== undefined ? { primary: error.primary } : {}),
    };
    httpAdapter.reply(response, body, status);
  }
}
