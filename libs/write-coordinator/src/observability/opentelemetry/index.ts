/**
 * The OpenTelemetry entry of the library (`…/opentelemetry`): job spans through
 * `@opentelemetry/api`, an optional peer dependency that only this entry loads.
 */
export { WriteCoordinatorTracing } from './write-coordinator.tracing';
export type { WriteCoordinatorTracingOptions } from './write-coordinator.tracing';
export { ATTR as WRITE_COORDINATOR_SPAN_ATTRIBUTES, JOB_SPAN as WRITE_COORDINATOR_JOB_SPAN } from './tracing.constants';
