import type { Logger } from '../../shared/log/logger.js';
import type { FailureSink } from '../../shared/util/guarded.js';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Prometheus metrics of the central (served at /metrics). */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'underlay_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'underlay_http_request_duration_seconds',
    help: 'HTTP request latency by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly storeCommit = new Histogram({
    name: 'underlay_store_commit_duration_seconds',
    help: 'Duration of one durable group commit (write + fsync) of the store journal',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [this.registry],
  });
  readonly storeCommitRecords = new Counter({
    name: 'underlay_store_records_committed_total',
    help: 'Store writes made durable',
    registers: [this.registry],
  });
  readonly objects = new Gauge({
    name: 'underlay_objects',
    help: 'Objects in the store by collection',
    labelNames: ['collection'] as const,
    registers: [this.registry],
  });

  readonly callbackFailures = new Counter({
    name: 'underlay_callback_failures_total',
    help: 'Timers and callbacks that threw (logged and survived) by where they run',
    labelNames: ['where'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'underlay_' });
  }
}

/** The central's sink for failed timers and callbacks (shared/util/guarded.ts): logged and counted. */
export function failureSink(logger: Logger, metrics?: Metrics): FailureSink {
  return (where, err) => {
    logger.error({ err, where }, `${where} failed; the central keeps running`);
    metrics?.callbackFailures.inc({ where });
  };
}
