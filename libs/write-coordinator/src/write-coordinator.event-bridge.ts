import type { EventEmitter2 } from '@nestjs/event-emitter';
import type { ChangePublisher } from './changes/write-change';
import type { ClusterObserver } from './cluster/cluster-node';
import { WriteCoordinatorError } from './errors';
import type { JobInfo, WriteQueueObserver } from './queue/queue.types';
import {
  JobAcceptedEvent,
  JobCompletedEvent,
  JobEventBase,
  JobFailedEvent,
  JobRejectedEvent,
  JobStartedEvent,
  ChangesMissedEvent,
  PrimaryLostEvent,
  RoleChangedEvent,
  QueueDrainedEvent,
  QueueSaturatedEvent,
  WriteCoordinatorEvents as Events,
} from './write-coordinator.events';

/**
 * @internal Turns the queue's state changes into EventEmitter2 events. The queue calls it after
 * each state change and swallows what a listener throws, so listeners can never stall the drain.
 * Payloads are built only for events somebody listens to: this sits on the drain's hot path.
 */
export function createEventBridge(coordinator: string, emitter: EventEmitter2): WriteQueueObserver {
  const emit = <E>(name: string, payload: () => E): void => {
    if (emitter.hasListeners(name)) emitter.emit(name, payload());
  };
  const base = (job: JobInfo): JobEventBase =>
    job.label === undefined ? { coordinator, jobId: job.jobId } : { coordinator, jobId: job.jobId, label: job.label };
  return {
    jobAccepted: (job, queueDepth) => emit(Events.JobAccepted, (): JobAcceptedEvent => ({ ...base(job), queueDepth })),
    jobStarted: (job, waitMs) => emit(Events.JobStarted, (): JobStartedEvent => ({ ...base(job), waitMs })),
    jobCompleted: (job, waitMs, runMs) =>
      emit(Events.JobCompleted, (): JobCompletedEvent => ({ ...base(job), waitMs, runMs })),
    jobFailed: (job, error) =>
      emit(Events.JobFailed, (): JobFailedEvent => ({
        ...base(job),
        error,
        ...(error instanceof WriteCoordinatorError ? { code: error.code } : {}),
      })),
    jobRejected: (job, error) =>
      emit(Events.JobRejected, (): JobRejectedEvent => ({ ...base(job), code: error.code, error })),
    queueSaturated: (queueDepth) =>
      emit(Events.QueueSaturated, (): QueueSaturatedEvent => ({ coordinator, queueDepth })),
    queueDrained: () => emit(Events.QueueDrained, (): QueueDrainedEvent => ({ coordinator })),
  };
}

/** @internal The default publisher: emits `WriteCoordinatorEvents.Change` on the app's EventEmitter2. */
export function createEventEmitterPublisher(emitter: EventEmitter2): ChangePublisher {
  return {
    publish: (change) => void emitter.emit(Events.Change, change),
    wants: () => emitter.hasListeners(Events.Change) === true,
  };
}

/** @internal Turns a cluster node's reports into `RoleChanged`, `PrimaryLost` and `ChangesMissed` events. */
export function createClusterEventBridge(coordinator: string, emitter: EventEmitter2): ClusterObserver {
  return {
    roleChanged: (role, previous, primaryPid) =>
      void emitter.emit(Events.RoleChanged, {
        coordinator,
        role,
        ...(previous === undefined ? {} : { previous }),
        pid: process.pid,
        ...(primaryPid === undefined ? {} : { primaryPid }),
      } satisfies RoleChangedEvent),
    primaryLost: (primaryPid, reason) =>
      void emitter.emit(Events.PrimaryLost, {
        coordinator,
        ...(primaryPid === undefined ? {} : { primaryPid }),
        reason,
      } satisfies PrimaryLostEvent),
    changesMissed: (missed, exact) =>
      void emitter.emit(Events.ChangesMissed, { coordinator, missed, exact } satisfies ChangesMissedEvent),
  };
}
