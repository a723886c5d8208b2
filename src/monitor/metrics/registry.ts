import type { OpenMetricsContentType, PrometheusContentType, Registry } from 'prom-client';

/** A registry of either format (prom-client types them apart). */
export type AnyRegistry = Registry<PrometheusContentType> | Registry<OpenMetricsContentType>;
