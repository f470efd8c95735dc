// Shared fixtures for the package's tests: the repository's fixture models and catalog, a
// storage hook over a Map, and a tiny HTTP server for bundle downloads.

import fs from 'node:fs';
import http from 'node:http';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
export const fixtures = `${root}tests/fixtures/`;
export const distWasm = fileURLToPath(new URL('../dist/wasm/foresight_bg.wasm', import.meta.url));

if (!fs.existsSync(distWasm)) {
  throw new Error('npm/dist is missing: run scripts/build-npm.sh first');
}

/** The wasm bytes, read once: each test passes them as `wasm` like a Node user would. */
export const wasm = fs.readFileSync(distWasm);
export const catalog = JSON.parse(fs.readFileSync(`${fixtures}catalog.json`, 'utf8')).items;
export const gruModel = fs.readFileSync(`${fixtures}session_gru.onnx`);
export const intentModel = fs.readFileSync(`${fixtures}intent_logreg.onnx`);
export const gruReference = JSON.parse(fs.readFileSync(`${fixtures}session_gru.reference.json`, 'utf8'));

/** A synchronous storage hook over a Map; `entries` is exposed for assertions. */
export function memoryStorage() {
  const entries = new Map();
  return {
    entries,
    get: (key) => (entries.has(key) ? entries.get(key) : null),
    set: (key, value) => {
      entries.set(key, value);
    },
    remove: (key) => {
      entries.delete(key);
    },
  };
}

/** The page's localStorage API over a Map (for Worker mode, which writes through the page). */
export function fakeLocalStorage() {
  const entries = new Map();
  return {
    entries,
    get length() {
      return entries.size;
    },
    key: (i) => [...entries.keys()][i] ?? null,
    getItem: (key) => (entries.has(key) ? entries.get(key) : null),
    setItem: (key, value) => {
      entries.set(key, String(value));
    },
    removeItem: (key) => {
      entries.delete(key);
    },
  };
}

/** Serves files of tests/fixtures/bundles; resolves to {url, close}. */
export function serveBundles() {
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent(new URL(req.url, 'http://x').pathname.slice(1));
    const path = `${fixtures}bundles/${name}`;
    if (!/^[\w.-]+\.fsb$/.test(name) || !fs.existsSync(path)) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = fs.readFileSync(path);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
    // Two writes, so that a download reports progress more than once.
    res.write(body.subarray(0, body.length >> 1));
    setTimeout(() => res.end(body.subarray(body.length >> 1)), 5);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) });
    });
  });
}

export const publicKey = fs.readFileSync(`${fixtures}bundles/test-signing.pub`, 'utf8').trim();
