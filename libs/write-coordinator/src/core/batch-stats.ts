/** Committed transactions and their sizes (jobs per transaction), part of the metrics. */
export interface BatchMetrics {
  /** Transactions committed. */
  committed: number;
  /** Jobs committed in them. */
  jobs: number;
  /** Mean jobs per committed transaction (0 before the first). */
  meanSize: number;
  /** Largest batch so far. */
  largest: number;
  /** Size of the last committed batch. */
  last: number;
}

/** @internal Counts committed batches for {@link BatchMetrics}. */
export class BatchStats {
  private committed = 0;
  private jobs = 0;
  private largest = 0;
  private last = 0;

  record(size: number): void {
    this.committed++;
    this.jobs += size;
    this.last = size;
    if (size > this.largest) this.largest = size;
  }

  snapshot(): BatchMetrics {
    return {
      committed: this.committed,
      jobs: this.jobs,
      meanSize: this.committed === 0 ? 0 : this.jobs / this.committed,
      largest: this.largest,
      last: this.last,
    };
  }
}
