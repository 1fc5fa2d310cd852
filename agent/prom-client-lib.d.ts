// The modules of prom-client that agent/prom.ts imports directly (prom-client declares only its
// package entry); agent/prom.ts gives each its type from that entry's declarations.
declare module 'prom-client/lib/counter.js' {
  const m: unknown;
  export default m;
}
declare module 'prom-client/lib/gauge.js' {
  const m: unknown;
  export default m;
}
declare module 'prom-client/lib/histogram.js' {
  const m: unknown;
  export default m;
}
declare module 'prom-client/lib/registry.js' {
  const m: unknown;
  export default m;
}
declare module 'prom-client/lib/defaultMetrics.js' {
  const m: unknown;
  export default m;
}
