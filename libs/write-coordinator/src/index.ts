/**
 * Public API of @app/write-coordinator. Everything a user may import is exported here, and only here.
 */
export { WriteCoordinatorModule } from './write-coordinator.module';
export type {
  WriteCoordinatorFactoryOptions,
  WriteCoordinatorModuleAsyncOptions,
  WriteCoordinatorOptionsFactory,
} from './write-coordinator.module-definition';
export { WRITE_COORDINATOR_DEFAULTS, resolveWriteCoordinatorOptions } from './core/coordinator-options';
export type { OutsideWriteMode, SynchronousLevel, WriteCoordinatorOptions } from './core/coordinator-options';
export { WriteCoordinator } from './write-coordinator.service';
export { Coordinator } from './core/coordinator';
export type {
  CoordinatorHooks,
  CoordinatorLog,
  CoordinatorMetrics,
  WriteOptions,
  WriteRequest,
} from './core/coordinator';
export type { WriteHandlerFn } from './submit/write-handler.registry';
export type { JobInfo, QueueMetrics, WriteQueueObserver } from './queue/queue.types';
export type { StorageStatus } from './sqlite/storage-health';
export type { BatchMetrics } from './core/batch-stats';
export type { WriteJob, WriteWork } from './transaction/write-job';
export type { RawStatement } from './transaction/raw-statements';
export type { LatencySummary } from './queue/latency-window';
export type { WhenFull, WriteQueueState } from './queue/queue.types';
export { InjectWriteCoordinator, getWriteCoordinatorToken } from './decorators/inject-write-coordinator.decorator';
export { SerializedWrite } from './decorators/serialized-write.decorator';
export type { SerializedWriteOptions } from './decorators/serialized-write.decorator';
export { WriteHandler } from './decorators/write-handler.decorator';
export type { WriteHandlerOptions } from './decorators/write-handler.decorator';
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
} from './changes/write-change';
export type { TopicMapping } from './changes/change-topics';
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
