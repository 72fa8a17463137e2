/**
 * The Prometheus entry of the library (`…/prometheus`): the exporter built on `prom-client`, an
 * optional peer dependency that only this entry loads.
 */
export { WriteCoordinatorPrometheus } from './write-coordinator.prometheus';
export type { WriteCoordinatorPrometheusOptions } from './write-coordinator.prometheus';
