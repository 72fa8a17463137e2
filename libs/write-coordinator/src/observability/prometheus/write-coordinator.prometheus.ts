import { register, Registry } from 'prom-client';
import {
  CoordinatorInstrumentation,
  CoordinatorObserver,
  InstrumentedCoordinator,
  trustInstrumentation,
} from '../../core/instrumentation';
import { OptionCheck, validateOptions } from '../../core/coordinator-options';
import { metricSetOf, PrometheusMetricSet } from './prometheus-metric-set';

/** Options of {@link WriteCoordinatorPrometheus}; every field is optional. */
export interface WriteCoordinatorPrometheusOptions {
  /**
   * The prom-client registry the metrics register on. Exporters given the same registry (and
   * prefix) share one set of metrics, each coordinator in its own `coordinator` label.
   * @default prom-client's default registry (`register`), the one `@willsoto/nestjs-prometheus` serves
   */
  registry?: Registry;
  /**
   * Prefix of every metric name; must be a valid start of a Prometheus metric name.
   * @default 'write_coordinator_'
   */
  prefix?: string;
}

const METRIC_PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

const CHECKS: Record<keyof WriteCoordinatorPrometheusOptions, OptionCheck> = {
  registry: (v) =>
    typeof (v as Partial<Registry> | null)?.registerMetric === 'function' ? undefined : 'a prom-client Registry',
  prefix: (v) => (typeof v === 'string' && METRIC_PREFIX.test(v) ? undefined : `a string matching ${METRIC_PREFIX}`),
};

/**
 * Prometheus metrics of the write coordinator, on a prom-client registry: counters of accepted,
 * completed, failed (by code), rejected (by code), cancelled, timed-out and dropped jobs; gauges
 * of queue depth and capacity, running jobs, submitters waiting for room, the oldest wait,
 * storage failing and role; histograms of queue wait, run time, commit time and batch size. Every
 * metric has a `coordinator` label. Gauges and most counters are read from `metrics()` when the
 * registry is scraped; per job, the exporter only adds to plain bucket counts.
 *
 * Give it to a coordinator's `instrumentation` option (see docs/observability.md). This entry
 * point (`…/prometheus`) is the only one that loads `prom-client`.
 *
 * @example
 * import { Registry } from 'prom-client';
 * const registry = new Registry();
 * WriteCoordinatorModule.forRoot({ instrumentation: [new WriteCoordinatorPrometheus({ registry })] });
 * // later: res.type(registry.contentType).send(await registry.metrics());
 *
 * @throws {InvalidOptionsError} for an invalid option, naming the field, expected and received value.
 */
export class WriteCoordinatorPrometheus implements CoordinatorInstrumentation {
  private readonly registry: Registry;
  private readonly prefix: string;

  constructor(options: WriteCoordinatorPrometheusOptions = {}) {
    validateOptions(CHECKS, options, 'WriteCoordinatorPrometheus');
    const { registry = register, prefix = 'write_coordinator_' } = options;
    this.registry = registry;
    this.prefix = prefix;
    trustInstrumentation(this);
  }

  /** @internal Called by each coordinator given this exporter: it is followed from now on. */
  instrument(coordinator: InstrumentedCoordinator): CoordinatorObserver {
    return this.metricSet().track(coordinator);
  }

  /** The metrics of this registry and prefix (created on first use; again after a `registry.clear()`). */
  private metricSet(): PrometheusMetricSet {
    return metricSetOf(this.registry, this.prefix);
  }
}
