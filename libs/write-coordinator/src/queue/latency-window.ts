/** Percentiles of the most recent samples, in milliseconds. */
export interface LatencySummary {
  /** Median of the recent samples. */
  p50: number;
  /** 90th percentile of the recent samples. */
  p90: number;
  /** 99th percentile of the recent samples. */
  p99: number;
  /** Largest recent sample. */
  max: number;
  /** How many samples the figures are drawn from (at most the window size). */
  samples: number;
}

/**
 * @internal A fixed-size ring of the most recent latency samples. Recording is O(1) and allocation
 * free (it sits on the drain's hot path); percentiles are computed only when a snapshot is taken.
 */
export class LatencyWindow {
  private readonly ring: Float64Array;
  private next = 0;
  private filled = 0;

  constructor(size = 1024) {
    this.ring = new Float64Array(size);
  }

  record(ms: number): void {
    this.ring[this.next] = ms;
    this.next = (this.next + 1) % this.ring.length;
    if (this.filled < this.ring.length) this.filled++;
  }

  summary(): LatencySummary {
    if (this.filled === 0) return { p50: 0, p90: 0, p99: 0, max: 0, samples: 0 };
    const sorted = this.ring.slice(0, this.filled).sort();
    const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]);
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: round(sorted[sorted.length - 1]), samples: this.filled };
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
