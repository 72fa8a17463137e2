/** @internal Metadata key of `@SerializedWrite` options, stored on the wrapped method. */
export const SERIALIZED_WRITE_METADATA = 'write-coordinator:serialized-write';

/** @internal Metadata key of `@WriteHandler` options, stored on the handler method. */
export const WRITE_HANDLER_METADATA = 'write-coordinator:write-handler';

/** @internal Property under which the explorer attaches coordinators to decorated instances. */
export const ATTACHED_COORDINATORS = Symbol('write-coordinator:attached');

/** @internal Token of the resolved options of one module instance. */
export const RESOLVED_OPTIONS = Symbol('write-coordinator:resolved-options');

/** @internal Token of Terminus's `HealthIndicatorService`, provided only when `@nestjs/terminus` is installed. */
export const HEALTH_INDICATOR_SERVICE = Symbol('write-coordinator:health-indicator-service');

export { DEFAULT_COORDINATOR_NAME } from './core/coordinator-options';
