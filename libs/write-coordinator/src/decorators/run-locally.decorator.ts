import { SetMetadata } from '@nestjs/common';

/** @internal Metadata key of {@link RunLocally} (on a handler or a controller). */
export const RUN_LOCALLY_METADATA = 'write-coordinator:run-locally';

/**
 * Opts a route handler, or every handler of a controller, out of
 * {@link PrimaryForwardingInterceptor}: it always runs on the host that received it (a POST that
 * only reads, a login that writes nothing to the database, a webhook that must be answered here).
 * A handler's mark wins over its controller's `@ForwardToPrimary()`.
 *
 * @example
 * @Post('search')
 * @RunLocally()
 * search(@Body() query: SearchDto) { … }
 */
export function RunLocally(): ClassDecorator & MethodDecorator {
  return SetMetadata(RUN_LOCALLY_METADATA, true);
}
