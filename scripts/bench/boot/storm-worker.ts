/**
 * A worker thread of the storm client (client.ts): runs the firmware's part after DHCP (storm-machine.ts)
 * for the machines the main thread hands it, so the client's TFTP and HTTP work spreads over cores.
 * Messages in: { id, job } per machine, { stop: true } at the end; out: { id, result }, then { stopped, elu }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { bootAfterDhcp, type AfterDhcp, type FirmwareSpec } from './storm-machine.js';

const spec = workerData as FirmwareSpec;
const elu0 = performance.eventLoopUtilization();
parentPort!.on('message', (m: { id: number; job: AfterDhcp } | { stop: true }) => {
  if ('stop' in m) {
    parentPort!.postMessage({ stopped: true, elu: performance.eventLoopUtilization(elu0).utilization });
    parentPort!.close();
    return;
  }
  void bootAfterDhcp(spec, m.job).then((result) => parentPort!.postMessage({ id: m.id, result }));
});
