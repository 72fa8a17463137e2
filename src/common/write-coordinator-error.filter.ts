import { ArgumentsHost, Catch, ExceptionFilter, HttpStatus } from '@nestjs/common';
import { WriteCoordinatorError, WriteErrorCode } from '@app/write-coordinator';

/** The part of the HTTP response this filter uses (Express's, without depending on its types). */
interface JsonResponse {
  setHeader(name: string, value: string): void;
  status(code: number): { json(body: unknown): void };
}

const STATUS: Record<WriteErrorCode, HttpStatus> = {
  QUEUE_FULL: HttpStatus.SERVICE_UNAVAILABLE,
  DRAINING: HttpStatus.SERVICE_UNAVAILABLE,
  SHUTDOWN: HttpStatus.SERVICE_UNAVAILABLE,
  COORDINATOR_NOT_READY: HttpStatus.SERVICE_UNAVAILABLE,
  BUSY: HttpStatus.SERVICE_UNAVAILABLE,
  TIMEOUT: HttpStatus.GATEWAY_TIMEOUT,
  CANCELLED: HttpStatus.SERVICE_UNAVAILABLE,
  CONFLICT: HttpStatus.CONFLICT,
  INVALID_PARAMS: HttpStatus.BAD_REQUEST,
  METHOD_NOT_FOUND: HttpStatus.NOT_FOUND,
  INVALID_OPTIONS: HttpStatus.INTERNAL_SERVER_ERROR,
  INTERNAL: HttpStatus.INTERNAL_SERVER_ERROR,
  WRITE_OUTSIDE_JOB: HttpStatus.INTERNAL_SERVER_ERROR,
  TRANSACTION_CONTROL: HttpStatus.INTERNAL_SERVER_ERROR,
};

/** Maps coordinator errors to HTTP: retryable refusals become 503 with `Retry-After`. */
@Catch(WriteCoordinatorError)
export class WriteCoordinatorErrorFilter implements ExceptionFilter<WriteCoordinatorError> {
  catch(error: WriteCoordinatorError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<JsonResponse>();
    const status = STATUS[error.code] ?? HttpStatus.INTERNAL_SERVER_ERROR;
    if (status === HttpStatus.SERVICE_UNAVAILABLE && error.retryable) response.setHeader('Retry-After', '1');
    response
      .status(status)
      .json({ statusCode: status, code: error.code, retryable: error.retryable, message: error.message });
  }
}
