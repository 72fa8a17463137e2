import { Histogram, Registry } from 'prom-client';

/**
 * @internal The observations of one coordinator for one histogram: plain counts per bucket, so that
 * recording costs a few nanoseconds on the drain's hot path (prom-client's `observe()` hashes its
 * labels on every call, about 300 ns). Read at scrape time by {@link RecordedHistogram}.
 */
export class HistogramRecorder {
  /** Observations per bucket, not cumulative: `counts[i]` holds those in (bounds[i-1], bounds[i]]. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  record(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    if (i < bounds.length) this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  clear(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.count = 0;
  }
}

type HistogramData = Awaited<ReturnType<Histogram['get']>>;

/**
 * @internal A prom-client `Histogram` labelled by coordinator whose values come from
 * {@link HistogramRecorder}s (one per coordinator name) rather than from `observe()`. It
 * registers, validates its name and prints like any prom-client histogram (`_bucket{le}`, `_sum`,
 * `_count`); `observe()` on it is not used.
 */
export class RecordedHistogram extends Histogram<'coordinator'> {
  private readonly recorders = new Map<string, HistogramRecorder>();
  private readonly bounds: readonly number[];

  constructor(
    private readonly metricName: string,
    private readonly help: string,
    buckets: readonly number[],
    registry: Registry,
  ) {
    super({ name: metricName, help, labelNames: ['coordinator'], buckets: [...buckets], registers: [registry] });
    this.bounds = [...buckets].sort((a, b) => a - b);
  }

  /** The recorder of a coordinator's observations (coordinators of one name share it). */
  recorder(coordinator: string): HistogramRecorder {
    let recorder = this.recorders.get(coordinator);
    if (recorder === undefined) {
      recorder = new HistogramRecorder(this.bounds);
      this.recorders.set(coordinator, recorder);
    }
    return recorder;
  }

  /** The recorded values, in prom-client's format: cumulative buckets, `+Inf`, sum and count. */
  override async get(): Promise<HistogramData> {
    return this.snapshot();
  }

  /** What prom-client's registry calls (when present) to print the text format. */
  getForPromString(): Promise<HistogramData> {
    return this.get();
  }

  override reset(): void {
    super.reset();
    // Called by the base constructor too, before this class's fields exist.
    this.recorders?.forEach((recorder) => recorder.clear());
  }

  private snapshot(): HistogramData {
    const { bounds, metricName } = this;
    const values: HistogramData['values'] = [];
    const bucketName = `${metricName}_bucket`;
    for (const [coordinator, recorder] of this.recorders) {
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += recorder.counts[i];
        values.push({ labels: { coordinator, le: bounds[i] }, value: cumulative, metricName: bucketName } as never);
      }
      values.push({ labels: { coordinator, le: '+Inf' }, value: recorder.count, metricName: bucketName } as never);
      values.push({ labels: { coordinator }, value: recorder.sum, metricName: `${metricName}_sum` } as never);
      values.push({ labels: { coordinator }, value: recorder.count, metricName: `${metricName}_count` } as never);
    }
    return {
      name: metricName,
      help: this.help,
      type: 'histogram',
      values,
      aggregator: 'sum',
    } as unknown as HistogramData;
  }
}
