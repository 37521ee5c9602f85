// A TypeScript photon's side of the interop test (test_photon_core.py): photon-core's own
// RedisBroker or HttpBroker, driven by JSON lines on stdin, reporting JSON lines on stdout.
//
//   node peer.mjs redis   (PHOTON_REDIS_URL, PHOTON_REDIS_PREFIX as photon-core reads them)
//   node peer.mjs http    (PHOTON_CHANNEL_HTTP_URL, PHOTON_CHANNEL_AUTH_TOKEN)
//
// in:  {"op":"subscribe","channel":"board:*"}        out: {"subscribed":"board:*"}
//      {"op":"publish","message":{"channel":...}}     out: {"published":N}   (N counts publishes)
//      {"op":"exit"}
// out: {"subscription":"board:*","message":{...}} for every message a handler gets, and
//      {"error":"..."} when a request fails.
import { createInterface } from 'node:readline';
import { createBroker } from '@portel/photon-core';

const kind = process.argv[2];
if (kind !== 'redis' && kind !== 'http') {
  console.error('usage: node peer.mjs redis|http');
  process.exit(2);
}
// Options left empty: each broker reads its environment, as a TypeScript photon's does.
const broker = createBroker(kind, {});
const say = (line) => process.stdout.write(JSON.stringify(line) + '\n');
let published = 0;

// Requests run one after another, in the order they came.
let queue = Promise.resolve();
createInterface({ input: process.stdin }).on('line', (text) => {
  queue = queue.then(async () => {
    const request = JSON.parse(text);
    try {
      if (request.op === 'subscribe') {
        await broker.subscribe(request.channel, (message) => {
          say({ subscription: request.channel, message });
        });
        say({ subscribed: request.channel });
      } else if (request.op === 'publish') {
        await broker.publish(request.message);
        say({ published: ++published });
      } else if (request.op === 'exit') {
        await broker.disconnect?.();
        process.exit(0);
      }
    } catch (error) {
      say({ error: String(error?.message ?? error) });
    }
  });
});
