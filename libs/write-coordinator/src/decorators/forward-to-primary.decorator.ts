import { SetMetadata } from '@nestjs/common';

/** @internal Metadata key of {@link ForwardToPrimary} (on a handler or a controller). */
export const FORWARD_TO_PRIMARY_METADATA = 'write-coordinator:forward-to-primary';

/**
 * Marks a route handler, or every handler of a controller, as one that
 * {@link PrimaryForwardingInterceptor} forwards to the primary host when this host is not the
 * primary, whatever the HTTP method. Needed only with the interceptor's `routes: 'marked'`; with
 * the default `'writes'` every non-GET/HEAD/OPTIONS route is forwarded already.
 *
 * @example
 * @Controller('orders')
 * @ForwardToPrimary()
 * export class OrdersController { … }
 */
export function ForwardToPrimary(): ClassDecorator & MethodDecorator {
  return SetMetadata(FORWARD_TO_PRIMARY_METADATA, true);
}
