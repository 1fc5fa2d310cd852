/**
 * prom-client's metric classes, taken from its own modules instead of its package entry
 * (docs/operations.md "Agent footprint"). The entry also loads the Pushgateway client and the
 * cluster aggregator, which load `node:https` (hence `node:tls` and `node:crypto`), `node:zlib`
 * and `node:cluster`: ~5 MiB of RSS in an agent that never uses them. The classes are the very
 * ones the entry exports (the same module files), so a metric made here and one made through
 * `prom-client` are alike; types come from prom-client's declarations.
 */

import type * as PromClient from 'prom-client';
import CounterModule from 'prom-client/lib/counter.js';
import collectDefaultMetricsModule from 'prom-client/lib/defaultMetrics.js';
import GaugeModule from 'prom-client/lib/gauge.js';
import HistogramModule from 'prom-client/lib/histogram.js';
import RegistryModule from 'prom-client/lib/registry.js';

/** prom-client's Counter. */
export const Counter = CounterModule as typeof PromClient.Counter;
export type Counter<T extends string = string> = PromClient.Counter<T>;
/** prom-client's Gauge. */
export const Gauge = GaugeModule as typeof PromClient.Gauge;
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
/** prom-client's Histogram. */
export const Histogram = HistogramModule as typeof PromClient.Histogram;
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
/** prom-client's Registry. */
export const Registry = RegistryModule as typeof PromClient.Registry;
export type Registry = PromClient.Registry;
/** prom-client's collectDefaultMetrics (process, heap, event-loop lag, GC metrics). */
export const collectDefaultMetrics = collectDefaultMetricsModule as typeof PromClient.collectDefaultMetrics;
