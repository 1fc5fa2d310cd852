/** The private influxd of the telemetry tests: it lives in testkit/influxd.ts (the benches use it too). */
export * from '../../testkit/influxd.js';
