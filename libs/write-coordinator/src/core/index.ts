/**
 * The Nest-free entry of the library (`nestjs-sqlite-write-coordinator/core`): everything a plain script or
 * worker needs to serialise its writes, without loading Nest. The package's main entry re-exports
 * all of it next to the Nest module.
 */
export { Coordinator } from './coordinator';
export type {
  CoordinatorHooks,
  CoordinatorLog,
  CoordinatorMetrics,
  WriteOptions,
  WriteRequest,
  WriteTarget,
} from './coordinator';
export { resolveWriteCoordinatorOptions, WRITE_COORDINATOR_DEFAULTS } from './coordinator-options';
export type { BatchYield, OutsideWriteMode, SynchronousLevel, WriteCoordinatorOptions } from './coordinator-options';
export type { ClusterOptions, ClusterRoleOption } from './coordinator-options';
export type { ClusterMetrics, ClusterObserver, ClusterRole, ReplicationMetrics } from '../cluster/cluster-node';
export type {
  HttpForwardingOptions,
  LiteFsStrategyOptions,
  LockStrategyOptions,
  PrimaryStrategyOptions,
  StaticStrategyOptions,
} from '../cluster/cluster.options';
export type { BatchMetrics } from './batch-stats';
export type { WalCheckpointOptions } from './coordinator-options';
export type { WalMetrics } from '../sqlite/wal-checkpoint';
export type { CoordinatorInstrumentation, CoordinatorObserver, InstrumentedCoordinator } from './instrumentation';
/** The single-drain queue engine alone (no database): the building block every coordinator runs on. */
export { WriteQueue } from '../queue/write-queue';
export type {
  JobEnding,
  JobInfo,
  QueueMetrics,
  WhenFull,
  WriteQueueObserver,
  WriteQueueSettings,
  WriteQueueState,
} from '../queue/queue.types';
export type { LatencySummary } from '../queue/latency-window';
export type { StorageStatus } from '../sqlite/storage-health';
export type { WriteHandlerFn } from '../submit/write-handler.registry';
export type { WriteJob, WriteWork } from '../transaction/write-job';
export type { RawStatement } from '../transaction/raw-statements';
export type {
  ChangePublisher,
  EntityChange,
  EntityOperation,
  RequestChange,
  WriteChange,
  WriteRequestMeta,
} from '../changes/write-change';
export type { TopicMapping } from '../changes/change-topics';
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
  NotPrimaryError,
  QueueFullError,
  ReplicationTimeoutError,
  ShutdownError,
  TimeoutError,
  TransactionControlError,
  UnavailableError,
  WriteCoordinatorError,
  WriteOutsideJobError,
} from '../errors';
export type { WriteCoordinatorErrorOptions, WriteErrorCode } from '../errors';
