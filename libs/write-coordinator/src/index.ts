/**
 * Public API of nestjs-sqlite-write-coordinator (the package's main entry). Everything a user may
 * import is exported here, and only here: the Nest face below, and everything of the Nest-free entry
 * (`./core`, also reachable alone as `nestjs-sqlite-write-coordinator/core`, which loads no Nest package).
 */
export * from './core/index';
export { WriteCoordinatorModule } from './write-coordinator.module';
export type {
  WriteCoordinatorFactoryOptions,
  WriteCoordinatorModuleAsyncOptions,
  WriteCoordinatorOptionsFactory,
} from './write-coordinator.module-definition';
export { WriteCoordinator } from './write-coordinator.service';
export { InjectWriteCoordinator, getWriteCoordinatorToken } from './decorators/inject-write-coordinator.decorator';
export { SerializedWrite } from './decorators/serialized-write.decorator';
export type { SerializedWriteOptions } from './decorators/serialized-write.decorator';
export { WriteHandler } from './decorators/write-handler.decorator';
export type { WriteHandlerOptions } from './decorators/write-handler.decorator';
export { WriteCoordinatorHealthIndicator } from './write-coordinator.health';
export type { WriteCoordinatorHealthOptions } from './write-coordinator.health';
export { WriteCoordinatorEvents } from './write-coordinator.events';
export type {
  ChangesMissedEvent,
  PrimaryLostEvent,
  RoleChangedEvent,
  JobAcceptedEvent,
  JobCompletedEvent,
  JobEventBase,
  JobFailedEvent,
  JobRejectedEvent,
  JobStartedEvent,
  QueueDrainedEvent,
  QueueSaturatedEvent,
  WriteCoordinatorEventName,
} from './write-coordinator.events';
export { WRITE_COORDINATOR_HTTP_STATUS, WriteCoordinatorExceptionFilter } from './write-coordinator-exception.filter';
export type { WriteCoordinatorErrorBody } from './write-coordinator-exception.filter';
export { PrimaryForwardingInterceptor } from './write-coordinator.forwarding.interceptor';
export type { ForwardingCoordinator } from './write-coordinator.forwarding.interceptor';
export type { PrimaryForwardingOptions } from './write-coordinator.forwarding.options';
export { ForwardToPrimary } from './decorators/forward-to-primary.decorator';
export { RunLocally } from './decorators/run-locally.decorator';
export { WRITE_COORDINATOR_FORWARDING_HEADERS } from './http-forwarding/forwarding-headers';
