/**
 * Public API of @app/write-coordinator. Everything a user may import is exported here, and only here.
 */
export { WriteCoordinatorModule } from './write-coordinator.module';
export type {
  WriteCoordinatorFactoryOptions,
  WriteCoordinatorModuleAsyncOptions,
  WriteCoordinatorOptionsFactory,
} from './write-coordinator.module-definition';
export { WRITE_COORDINATOR_DEFAULTS, resolveWriteCoordinatorOptions } from './write-coordinator.options';
export type { OutsideWriteMode, SynchronousLevel, WriteCoordinatorOptions } from './write-coordinator.options';
export { WriteCoordinator } from './write-coordinator.service';
export type { CoordinatorMetrics, WriteOptions, WriteRequest } from './write-coordinator.service';
export type { StorageStatus } from './storage-health';
export type { BatchMetrics } from './batch-stats';
export type { WriteJob, WriteWork } from './transaction-scope';
export type { RawStatement } from './raw-statements';
export type { LatencySummary } from './latency-window';
export type { WhenFull, WriteQueueState } from './write-queue';
export { InjectWriteCoordinator, getWriteCoordinatorToken } from './inject-write-coordinator.decorator';
export { SerializedWrite } from './serialized-write.decorator';
export type { SerializedWriteOptions } from './serialized-write.decorator';
export { WriteHandler } from './write-handler.decorator';
export type { WriteHandlerOptions } from './write-handler.decorator';
export { WriteCoordinatorHealthIndicator } from './write-coordinator.health';
export type { WriteCoordinatorHealthOptions } from './write-coordinator.health';
export { WriteCoordinatorEvents } from './write-coordinator.events';
export type {
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
export type {
  ChangePublisher,
  EntityChange,
  EntityOperation,
  RequestChange,
  WriteChange,
  WriteRequestMeta,
} from './change-publisher';
export type { TopicMapping } from './change-topics';
export {
  BusyError,
  CancelledError,
  ConflictError,
  CoordinatorNotReadyError,
  DrainingError,
  InternalError,
  InvalidOptionsError,
  InvalidParamsError,
  MethodNotFoundError,
  QueueFullError,
  ShutdownError,
  TimeoutError,
  TransactionControlError,
  WriteCoordinatorError,
  WriteOutsideJobError,
} from './errors';
export type { WriteCoordinatorErrorOptions, WriteErrorCode } from './errors';
