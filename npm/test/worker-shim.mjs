// Runs the package's module worker (dist/worker.js) in a Node worker thread: gives it the
// DedicatedWorkerGlobalScope surface it uses (`self`, `addEventListener('message')`,
// `postMessage`) over worker_threads' parentPort.

import { parentPort, workerData } from 'node:worker_threads';

globalThis.self = globalThis;
globalThis.postMessage = (message) => parentPort.postMessage(message);
globalThis.addEventListener = (type, listener) => {
  if (type === 'message') parentPort.on('message', (data) => listener({ data }));
};

await import(workerData.script);
