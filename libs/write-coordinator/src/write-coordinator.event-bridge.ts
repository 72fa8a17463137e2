import type { EventEmitter2 } from '@nestjs/event-emitter';
import { WriteCoordinatorError } from './errors';
import {
  JobAcceptedEvent,
  JobCompletedEvent,
  JobEventBase,
  JobFailedEvent,
  JobRejectedEvent,
  JobStartedEvent,
  QueueDrainedEvent,
  QueueSaturatedEvent,
  WriteCoordinatorEvents as Events,
} from './write-coordinator.events';
import type { JobInfo, WriteQueueObserver } from './queue/write-queue';

/**
 * @internal Turns the queue's state changes into EventEmitter2 events. The queue calls it after
 * each state change and swallows what a listener throws, so listeners can never stall the drain.
 * Payloads are built only for events somebody listens to: this sits on the drain's hot path.
 */
export function createEventBridge(coordinator: string, emitter: EventEmitter2): WriteQueueObserver {
  const base = (job: JobInfo): JobEventBase =>
    job.label === undefined ? { coordinator, jobId: job.jobId } : { coordinator, jobId: job.jobId, label: job.label };
  return {
    jobAccepted(job, queueDepth) {
      if (emitter.hasListeners(Events.JobAccepted)) {
        emitter.emit(Events.JobAccepted, { ...base(job), queueDepth } satisfies JobAcceptedEvent);
      }
    },
    jobStarted(job, waitMs) {
      if (emitter.hasListeners(Events.JobStarted)) {
        emitter.emit(Events.JobStarted, { ...base(job), waitMs } satisfies JobStartedEvent);
      }
    },
    jobCompleted(job, waitMs, runMs) {
      if (emitter.hasListeners(Events.JobCompleted)) {
        emitter.emit(Events.JobCompleted, { ...base(job), waitMs, runMs } satisfies JobCompletedEvent);
      }
    },
    jobFailed(job, error) {
      if (emitter.hasListeners(Events.JobFailed)) {
        const code = error instanceof WriteCoordinatorError ? { code: error.code } : {};
        emitter.emit(Events.JobFailed, { ...base(job), error, ...code } satisfies JobFailedEvent);
      }
    },
    jobRejected(job, error) {
      if (emitter.hasListeners(Events.JobRejected)) {
        emitter.emit(Events.JobRejected, { ...base(job), code: error.code, error } satisfies JobRejectedEvent);
      }
    },
    queueSaturated(queueDepth) {
      if (emitter.hasListeners(Events.QueueSaturated)) {
        emitter.emit(Events.QueueSaturated, { coordinator, queueDepth } satisfies QueueSaturatedEvent);
      }
    },
    queueDrained() {
      if (emitter.hasListeners(Events.QueueDrained)) {
        emitter.emit(Events.QueueDrained, { coordinator } satisfies QueueDrainedEvent);
      }
    },
  };
}
