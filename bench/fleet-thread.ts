/**
 * One thread of a threaded fleet (bench/fleet.ts `threads`): plays the agents of its `range` with
 * the in-process fleet and tells the parent its counters and event-loop delay every 100 ms, and
 * at once when asked (`idle`: once nothing is under way; `reset`; `stop`).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type Fleet, type FleetOptions, type FleetThreadState, startFleet } from './fleet.js';

const port = parentPort;
if (!port) throw new Error('bench/fleet-thread.ts runs as a worker thread of bench/fleet.ts');
const fleet: Fleet = await startFleet(workerData as FleetOptions);

/** This thread's state; its event-loop figures are since the parent's last `reset`. */
const state = (): FleetThreadState => {
  const c = fleet.counters;
  return {
    counters: { ...c, errors: Object.fromEntries(c.errors) },
    loop: fleet.eventLoop(false),
    idle: c.inFlight === 0,
  };
};

const tick = setInterval(() => port.postMessage({ type: 'state', state: state() }), 100);
port.on('message', (m: { type: string; arg?: number }) => {
  if (m.type === 'reset') {
    fleet.eventLoop(true);
    port.postMessage({ type: 'reset', state: state() });
  } else if (m.type === 'idle') {
    fleet.idle(m.arg).then(
      () => port.postMessage({ type: 'idle', state: state() }),
      () => port.postMessage({ type: 'idle', state: state() }),
    );
  } else if (m.type === 'stop') {
    clearInterval(tick);
    void fleet.stop().then(() => port.postMessage({ type: 'stopped', state: state() }));
  }
});
port.postMessage({ type: 'ready', state: state() });
