// Shared by the benchmarks: an observer of every queue event that does nothing, so the figures
// include the cost of reporting events (metrics and hooks on) with no listener.
export const silentObserver = Object.freeze({
  jobAccepted() {},
  jobStarted() {},
  jobCompleted() {},
  jobFailed() {},
  jobRejected() {},
  queueSaturated() {},
  queueDrained() {},
});
