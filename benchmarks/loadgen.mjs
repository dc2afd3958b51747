// A load generator in Node with `ws`: a faster client than asyncio websockets, so that what is
// measured is the server and not the load generator (each run reports the generator's own
// CPU use, `loadgen_cpu_share`: near 1.0, a whole core, means the generator was the limit).
// `ws` comes from benchmarks/.peerjs (the PeerJS server's own dependency, installed by
// `python -m benchmarks`). Prints one JSON object.
//
// forward: node benchmarks/loadgen.mjs forward --url URL[,URL2...] [--pairs 20] [--inflight 4]
//          [--size 400] [--seconds 8] [--protocol membrane|peerjs]
//   Pairs are spread over the URLs (one room each). In each pair A sends offers to B with K in
//   flight and B answers each; A measures the round trip (same fields as the Python one).
// rooms:   node benchmarks/loadgen.mjs rooms --url URL-with-{room} [--rooms 10] [--peers 6]
//          [--rate 1000] [--seconds 8] [--protocol ...]
//   R rooms of P peers; the peers send `rate` messages/s in all, 200 B to 4 KB each, half to
//   one room-mate and half to "all" (PeerJS has no rooms: its clients send to each room-mate).
//   Receivers measure one-way latency (same process, same clock) and count what arrived.

import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";

const require = createRequire(new URL("./.peerjs/node_modules/", import.meta.url));
const WebSocket = require("ws");

const scenario = process.argv[2];
const args = Object.fromEntries(
  process.argv.slice(3).reduce((pairs, word, i, all) =>
    (word.startsWith("--") ? [...pairs, [word.slice(2), all[i + 1]]] : pairs), []));
const urls = args.url.split(",");
const rooms = Number(args.rooms ?? 10);
const peersPerRoom = Number(args.peers ?? 6);
const rate = Number(args.rate ?? 1000);
const pairs = Number(args.pairs ?? 20);
const inflight = Number(args.inflight ?? 4);
const size = Number(args.size ?? 400);
const seconds = Number(args.seconds ?? 8);
const protocol = args.protocol ?? "membrane";
if (!urls.every((u) => u.startsWith("ws://127.") || u.startsWith("ws://localhost"))) {
  throw new Error("benchmarks only talk to loopback");
}
const padding = "x".repeat(Math.max(0, size - 60));

function frame(event, data, to) {
  return protocol === "peerjs"
    ? JSON.stringify({ type: event.toUpperCase(), dst: to, payload: data })
    : JSON.stringify({ event, to: [to], data });
}

function parse(text) {
  const m = JSON.parse(text);
  return protocol === "peerjs" ? [String(m.type || "").toLowerCase(), m.payload] : [m.event, m.data];
}

/** Connect and wait for the admission frame; resolve [socket, id, inbox-setter]. */
function join(base) {
  return new Promise((resolve, reject) => {
    let id = null;
    let url = base;
    if (protocol === "peerjs") {
      id = randomUUID();
      url = `${base}?key=peerjs&id=${id}&token=${randomUUID().slice(0, 8)}`;
    }
    const socket = new WebSocket(url, { perMessageDeflate: false });
    const peer = { socket, id, onFrame: null };
    // Listen before "open": the first frame can come in the same read as the 101.
    socket.on("message", (data) => {
      const text = data.toString();
      if (peer.onFrame) { peer.onFrame(text); return; }
      const m = JSON.parse(text);
      if (protocol === "peerjs" ? m.type === "OPEN" : m.event === "authenticated") {
        if (protocol !== "peerjs") peer.id = m.data.peer_id;
        peer.onFrame = () => {};  // joined/left notices until the run starts
        resolve(peer);
      } else reject(new Error(`not admitted: ${text}`));
    });
    socket.on("error", reject);
  });
}

const cpuShare = (cpu, seconds) => Number(((cpu.user + cpu.system) / 1e6 / seconds).toFixed(2));

function percentile(sorted, q) {
  return sorted.length ? Number(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))].toFixed(3)) : 0;
}

async function forward() {
const samples = [];
const connections = [];
for (let i = 0; i < pairs; i++) {
  const url = urls[i % urls.length];
  connections.push([await join(url), await join(url)]);
}
await new Promise((r) => setTimeout(r, 200));

const cpuBefore = process.cpuUsage();
const started = performance.now();
const deadline = started + seconds * 1000;
const runs = connections.map(([a, b]) => new Promise((resolve) => {
  b.onFrame = (text) => {
    const [event, data] = parse(text);
    if (event === "offer") b.socket.send(frame("answer", data, a.id));
  };
  let sent = 0, done = 0;
  const starts = new Map();
  const sendOne = () => {
    starts.set(sent, performance.now());
    a.socket.send(frame("offer", { n: sent, sdp: padding }, b.id));
    sent += 1;
  };
  a.onFrame = (text) => {
    const [event, data] = parse(text);
    if (event !== "answer") return;
    samples.push(performance.now() - starts.get(data.n));
    starts.delete(data.n);
    done += 1;
    if (performance.now() < deadline) sendOne();
    else if (done === sent) resolve(done);
  };
  for (let k = 0; k < inflight; k++) sendOne();
}));
const done = await Promise.all(runs);
const elapsed = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
for (const [a, b] of connections) { a.socket.terminate(); b.socket.terminate(); }
samples.sort((x, y) => x - y);
const pick = (q) => percentile(samples, q);
const forwarded = 2 * done.reduce((x, y) => x + y, 0);
return {
  scenario: "forward", client: "node", pairs, inflight, size, rooms: urls.length, forwarded,
  seconds: Number(elapsed.toFixed(3)), messages_per_s: Number((forwarded / elapsed).toFixed(1)),
  p50_ms: pick(0.5), p99_ms: pick(0.99), max_ms: Number(samples[samples.length - 1].toFixed(3)),
  loadgen_cpu_share: cpuShare(cpu, elapsed),
};
}

async function roomsScenario() {
  const members = [];  // [room][peer]
  for (let r = 0; r < rooms; r++) {
    const url = urls[0].replace("{room}", String(r));
    const room = [];
    for (let p = 0; p < peersPerRoom; p++) room.push(await join(url));
    members.push(room);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const latencies = [];
  let received = 0;
  let expected = 0;
  for (const room of members) {
    for (const peer of room) {
      peer.onFrame = (text) => {
        const [event, data] = parse(text);
        if (event !== "offer") return;
        latencies.push(performance.now() - data.t);
        received += 1;
      };
    }
  }
  const everyone = members.flatMap((room, r) => room.map((peer) => [r, peer]));
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let sent = 0;
  let sizeSeed = 1;
  const nextSize = () => { sizeSeed = (sizeSeed * 48271) % 2147483647; return 200 + (sizeSeed % 3897); };
  await new Promise((resolve) => {
    const timer = setInterval(() => {
      const elapsed = (performance.now() - started) / 1000;
      const due = Math.min(Math.floor(elapsed * rate), Math.floor(seconds * rate));
      for (; sent < due; sent++) {
        const [r, peer] = everyone[sent % everyone.length];
        const mates = members[r].filter((other) => other !== peer);
        const data = { t: performance.now(), sdp: "x".repeat(nextSize()) };
        if (sent % 2 === 0) {
          const to = mates[sent % mates.length];
          peer.socket.send(frame("offer", data, to.id));
          expected += 1;
        } else if (protocol === "peerjs") {
          for (const to of mates) peer.socket.send(frame("offer", data, to.id));
          expected += mates.length;
        } else {
          peer.socket.send(JSON.stringify({ event: "offer", to: "all", data }));
          expected += mates.length;
        }
      }
      if (sent >= seconds * rate) { clearInterval(timer); resolve(); }
    }, 2);
  });
  const sendEnd = performance.now();
  const waitUntil = sendEnd + 10000;  // stragglers: bounded
  while (received < expected && performance.now() < waitUntil) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  for (const room of members) for (const peer of room) peer.socket.terminate();
  latencies.sort((x, y) => x - y);
  return {
    scenario: "rooms", client: "node", rooms, peers: peersPerRoom, offered_per_s: rate,
    sent, expected, received, lost: expected - received,
    delivered_per_s: Number((received / elapsed).toFixed(1)),
    p50_ms: percentile(latencies, 0.5), p99_ms: percentile(latencies, 0.99),
    max_ms: latencies.length ? Number(latencies[latencies.length - 1].toFixed(3)) : 0,
    loadgen_cpu_share: cpuShare(cpu, elapsed),
  };
}

const result = scenario === "rooms" ? await roomsScenario() : await forward();
console.log(JSON.stringify(result));
process.exit(0);
