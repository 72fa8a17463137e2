import { IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** How late the event loop ran its timers recently, in ms (0 when it is idle and responsive). */
export interface EventLoopDelay {
  /** Median delay of the recent samples. */
  p50: number;
  /** 99th percentile delay of the recent samples. */
  p99: number;
  /** Largest recent delay. */
  max: number;
  /** How many samples the figures are drawn from. */
  samples: number;
  /** The figures cover between one and two windows of this many ms before the snapshot. */
  windowMs: number;
}

/**
 * @internal Event-loop delay over a sliding look-back, from Node's native
 * `perf_hooks.monitorEventLoopDelay` (a libuv timer every `resolutionMs`; a blocked loop shows as a
 * late timer). The histogram is cumulative, so it is rotated every `windowMs`: a snapshot reports,
 * per figure, the worse of the current and the previous window, hence what happened in the last
 * `windowMs` to `2 × windowMs`. A short window matters: an idle loop records a sample every
 * `resolutionMs` and a blocked one only when it wakes, so over a long window the idle samples would
 * hide a stretch of overload from the percentiles.
 */
export class EventLoopMonitor {
  private readonly histogram: IntervalHistogram;
  private previous: Omit<EventLoopDelay, 'windowMs'> = { p50: 0, p99: 0, max: 0, samples: 0 };
  private rotation: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly windowMs = 1_000,
    private readonly resolutionMs = 10,
  ) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  }

  /** Starts sampling; idempotent. The timers never keep the process alive. */
  start(): void {
    if (this.rotation) return;
    this.histogram.enable();
    this.rotation = setInterval(() => {
      this.previous = this.current();
      this.histogram.reset();
    }, this.windowMs);
    this.rotation.unref();
  }

  /** Stops sampling; idempotent. */
  stop(): void {
    if (!this.rotation) return;
    clearInterval(this.rotation);
    this.rotation = undefined;
    this.histogram.disable();
  }

  /** The recent delay (see the class comment for the look-back). */
  snapshot(): EventLoopDelay {
    const current = this.current();
    const previous = this.previous;
    return {
      p50: Math.max(current.p50, previous.p50),
      p99: Math.max(current.p99, previous.p99),
      max: Math.max(current.max, previous.max),
      samples: current.samples + previous.samples,
      windowMs: this.windowMs,
    };
  }

  private current(): Omit<EventLoopDelay, 'windowMs'> {
    const h = this.histogram;
    if (h.count === 0) return { p50: 0, p99: 0, max: 0, samples: 0 };
    // The histogram records the interval between timer runs; the delay is what exceeds the period.
    const delay = (ns: number) => Math.max(0, Math.round((ns / 1e6 - this.resolutionMs) * 10) / 10);
    return { p50: delay(h.percentile(50)), p99: delay(h.percentile(99)), max: delay(h.max), samples: h.count };
  }
}
