import type { EventEmitter2 } from '@nestjs/event-emitter';
import { WriteCoordinatorError } from './errors';
import {
  JobAcceptedEvent,
  JobCompletedEvent,
  JobFailedEvent,
  JobRejectedEvent,
  JobStartedEvent,
  QueueDrainedEvent,
  QueueSaturatedEvent,
  WriteCoordinatorEvents,
} from './write-coordinator.events';
import type { JobInfo, WriteQueueObserver } from './write-queue';

/**
 * @internal Turns the queue's state changes into EventEmitter2 events. The queue calls it after
 * each state change and swallows what a listener throws, so listeners can never stall the drain.
 */
export function createEventBridge(coordinator: string, emitter: EventEmitter2): WriteQueueObserver {
  const base = (job: JobInfo) =>
    job.label === undefined ? { coordinator, jobId: job.jobId } : { coordinator, jobId: job.jobId, label: job.label };
  return {
    jobAccepted: (job, queueDepth) =>
      emitter.emit(WriteCoordinatorEvents.JobAccepted, { ...base(job), queueDepth } satisfies JobAcceptedEvent),
    jobStarted: (job, waitMs) =>
      emitter.emit(WriteCoordinatorEvents.JobStarted, { ...base(job), waitMs } satisfies JobStartedEvent),
    jobCompleted: (job, waitMs, runMs) =>
      emitter.emit(WriteCoordinatorEvents.JobCompleted, { ...base(job), waitMs, runMs } satisfies JobCompletedEvent),
    jobFailed: (job, error) =>
      emitter.emit(WriteCoordinatorEvents.JobFailed, {
        ...base(job),
        error,
        ...(error instanceof WriteCoordinatorError ? { code: error.code } : {}),
      } satisfies JobFailedEvent),
    jobRejected: (job, error) =>
      emitter.emit(WriteCoordinatorEvents.JobRejected, {
        ...base(job),
        code: error.code,
        error,
      } satisfies JobRejectedEvent),
    queueSaturated: (queueDepth) =>
      emitter.emit(WriteCoordinatorEvents.QueueSaturated, { coordinator, queueDepth } satisfies QueueSaturatedEvent),
    queueDrained: () => emitter.emit(WriteCoordinatorEvents.QueueDrained, { coordinator } satisfies QueueDrainedEvent),
  };
}
