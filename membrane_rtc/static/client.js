// membrane-rtc JavaScript client: one ES module, no build step. Served at /client.js.
//
//   import { SignalingClient, MeshCall } from "/client.js";
//   const client = new SignalingClient("ws://127.0.0.1:8080/webrtc/demo");
//   const peerId = await client.connect();           // resolves on "authenticated"
//   const call = new MeshCall(client, localStream);  // one RTCPeerConnection per remote peer
//
// SignalingClient speaks the wire protocol (frames with event, data, from, to) and dispatches
// DOM events: "joined", "left", "error", "message" (any other event; detail = frame), and for
// the connection: "state" (detail.state: connecting, connected, reconnecting, closed),
// "reconnecting" (detail: attempt, delay), "resumed" (same peer id), "new-identity" (the
// server admitted us afresh: detail.previous is the old id) and "close" (for good).
//
// A connection that drops (a network change, sleep, a server restart) is resumed with the
// server's resume token: backoff with jitter, for at most `giveUpAfter` ms (the server's
// --resume-grace; 20 s by default). A dead network is noticed by a keepalive "ping". The client
// counts the frames of its session (`received`) and says so when it resumes: the server sends
// again every one after those, even those it wrote into the dropped connection.
//
// Only the server may send "authenticated", "left" and "error" (from null) and "joined" (from the
// joining peer, naming itself): a frame that uses one of these names otherwise is a peer speaking
// as the server (through an older server, or a room that rewrites events) and is dropped.

/** Close codes after which resuming is pointless: we were let go on purpose, or broke rules. */
const FINAL_CLOSE_CODES = new Set([1000, 1002, 1007, 1008, 1009]);
/** Messages sent while reconnecting, kept to send once resumed (more are dropped). */
const MAX_OUTBOX = 256;
/** The events only the server sends (see fromServer). */
const SERVER_EVENTS = new Set(["authenticated", "joined", "left", "error"]);
/** The "error" descriptions the gateway itself answers a malformed frame of ours with: not
 * frames of the session (the room never numbered them), so not counted. */
const GATEWAY_ANSWERS = new Set(["Invalid JSON", "Invalid message"]);

const isObject = (value) => value !== null && typeof value === "object" && !Array.isArray(value);

/** A server frame, or null for text that is not one (not JSON, not an object, no string event):
 * nothing to act on, and nothing to throw over. */
function parseFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    return null;
  }
  return isObject(frame) && typeof frame.event === "string" ? frame : null;
}

export class SignalingClient extends EventTarget {
  constructor(url, { reconnect = true, giveUpAfter = 20000, backoff = 250, maxBackoff = 5000,
                     keepalive = 10000 } = {}) {
    super();
    this.url = url;
    this.options = { reconnect, giveUpAfter, backoff, maxBackoff, keepalive };
    this.peerId = null;
    this.socket = null;
    this.state = "new";
    this.resumeToken = null;
    this.iceServers = null;  // from the server, when it hands out STUN/TURN
    this.metadata = null;    // our public metadata, as room-mates see it
    this.outbox = [];
    // The frames of this session received so far (docs/reference/protocol.md): from
    // "authenticated" on, not "pong" nor the gateway's own answers, nor a resume's
    // "authenticated". Sent as `received` when resuming; a new session starts again at 1.
    this.received = 0;
    this.closing = false;
    this.lastHeard = 0;
    this.keepaliveTimer = null;
  }

  /** Open the socket; resolve with our peer id, or reject with the server's error. */
  connect() {
    return new Promise((resolve, reject) => {
      this.#open(this.url, resolve, reject);
    });
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(new CustomEvent("state", { detail: { state } }));
  }

  #open(url, resolve, reject) {
    const socket = new WebSocket(url);
    this.socket = socket;
    this.#setState(this.state === "reconnecting" ? "reconnecting" : "connecting");
    let authenticated = false;
    const current = () => this.socket === socket;  // an abandoned socket's events are ignored
    socket.addEventListener("message", (event) => {
      if (!current()) return;
      this.lastHeard = Date.now();
      if (event.data === "pong") return;
      const frame = parseFrame(event.data);
      if (frame === null) return;
      if (!authenticated) {
        // The first frame: a new session's "authenticated" is its frame 1; a resume's is none.
        if (frame.event === "authenticated" && !frame.data?.resumed) this.received = 1;
      } else if (!(frame.event === "error" && frame.from === null
                   && GATEWAY_ANSWERS.has(frame.data?.description))) {
        this.received += 1;  // numbered by the room, even a frame dropped below
      }
      if (SERVER_EVENTS.has(frame.event) && !this.#fromServer(frame)) return;  // a peer's forgery
      if (frame.event === "authenticated") {
        // The server sends one per connection: a second (a room's own, at worst) must not
        // swap our identity.
        if (authenticated) return;
        authenticated = true;
        this.#authenticated(frame.data);
        resolve?.(this.peerId);
      } else if (frame.event === "error" && !authenticated) {
        reject?.(new SignalingError(frame.data));
      }
      const type = SERVER_EVENTS.has(frame.event) ? frame.event : "message";
      this.dispatchEvent(new CustomEvent(type, { detail: frame }));
    });
    socket.addEventListener("close", (event) => {
      if (!current()) return;
      this.#stopKeepalive();
      if (!authenticated && this.state === "reconnecting") return this.#retry();
      if (!authenticated) reject?.(new SignalingError({ description: "Connection refused", details: event.code }));
      if (authenticated && this.#mayResume(event.code)) return this.#dropped();
      this.#closed(event.code, event.reason);
    });
  }

  /** Whether a frame with one of the server's event names is the server's: "joined" comes
   * from the joining peer and names it (Membrane's format; never us: we do not join twice),
   * the others come from null. A peer cannot send from null, nor as another peer. */
  #fromServer(frame) {
    const { event, data, from } = frame;
    if (event === "joined") {
      return typeof from === "string" && isObject(data) && data.peer_id === from
        && from !== this.peerId;
    }
    if (from !== null || !isObject(data)) return false;
    return event === "error" || typeof data.peer_id === "string";  // authenticated, left
  }

  #authenticated(data) {
    const previous = this.peerId;
    this.peerId = data.peer_id;
    this.resumeToken = data.resume_token ?? null;
    this.iceServers = data.ice_servers ?? null;
    this.metadata = data.metadata ?? null;
    const wasReconnecting = this.state === "reconnecting";
    this.#setState("connected");
    this.#startKeepalive();
    if (!wasReconnecting) return;
    if (data.resumed) {
      for (const text of this.outbox.splice(0)) this.socket.send(text);
      this.dispatchEvent(new CustomEvent("resumed", { detail: { peerId: this.peerId } }));
    } else {
      this.outbox = [];  // meant for peers of a session that is over
      this.dispatchEvent(new CustomEvent("new-identity", { detail: { peerId: this.peerId, previous } }));
    }
  }

  #mayResume(code) {
    return this.options.reconnect && !this.closing && this.resumeToken !== null
      && !FINAL_CLOSE_CODES.has(code);
  }

  // -- resuming ------------------------------------------------------------------------------

  #dropped() {
    this.#setState("reconnecting");
    this.droppedAt = Date.now();
    this.attempt = 0;
    this.#retry();
  }

  #retry() {
    const elapsed = Date.now() - this.droppedAt;
    if (elapsed >= this.options.giveUpAfter) return this.#closed(1006, "could not resume");
    // Exponential backoff with full jitter, capped: many clients of one server do not come
    // back in lockstep after it restarts.
    const ceiling = Math.min(this.options.maxBackoff, this.options.backoff * 2 ** this.attempt);
    const delay = this.attempt === 0 ? 0 : Math.random() * ceiling;
    this.attempt += 1;
    this.dispatchEvent(new CustomEvent("reconnecting", { detail: { attempt: this.attempt, delay } }));
    setTimeout(() => {
      if (this.closing) return;
      const url = new URL(this.url);
      url.searchParams.set("resume", this.resumeToken);
      url.searchParams.set("received", String(this.received));
      this.#open(url.toString(), null, null);
    }, delay);
  }

  #closed(code, reason) {
    this.#stopKeepalive();
    this.#setState("closed");
    this.dispatchEvent(new CustomEvent("close", { detail: { code, reason } }));
  }

  // -- keepalive: a network that died silently is noticed, and resumed from ------------------

  #startKeepalive() {
    this.#stopKeepalive();
    const every = this.options.keepalive;
    if (!every) return;
    this.lastHeard = Date.now();
    this.keepaliveTimer = setInterval(() => {
      if (Date.now() - this.lastHeard > 2 * every) {
        // No pong for two periods: abandon the socket without a close frame (one that did
        // arrive would tell the server we left); the resume closes it on the server's side.
        this.#stopKeepalive();
        this.socket = null;
        if (this.#mayResume(1006)) this.#dropped(); else this.#closed(1006, "keepalive timeout");
      } else if (this.socket?.readyState === WebSocket.OPEN) {
        this.socket.send("ping");
      }
    }, every);
  }

  #stopKeepalive() {
    clearInterval(this.keepaliveTimer);
    this.keepaliveTimer = null;
  }

  /** Send an event to some peers (a list of ids) or to "all" but ourselves. While
   * reconnecting it is kept and sent once resumed. */
  send(event, data, to) {
    const text = JSON.stringify({ event, data, to });
    if (this.state === "reconnecting" || this.socket?.readyState !== WebSocket.OPEN) {
      if (this.state === "reconnecting" && this.outbox.length < MAX_OUTBOX) this.outbox.push(text);
      return;
    }
    this.socket.send(text);
  }

  /** Leave the room for good (a close frame: the server lets our peer go at once). */
  close() {
    this.closing = true;
    this.#stopKeepalive();
    if (this.socket) this.socket.close(1000);
    else this.#closed(1000, "");
  }
}

export class SignalingError extends Error {
  constructor(data) {
    super(`${data.description}${data.details !== undefined && data.details !== null ? ": " + JSON.stringify(data.details) : ""}`);
    this.description = data.description;
    this.details = data.details;
  }
}

// A full-mesh call: peers already in the room offer to each newcomer ("joined"); the newcomer
// answers. Offers, answers and ICE candidates travel as the events "offer", "answer", "candidate".
// ICE servers come from the server's "authenticated" when it hands them out. After a resume,
// every connection restarts ICE (the network under it changed); after a new identity, the
// old connections are dropped (the others see us join anew and offer).
export class MeshCall extends EventTarget {
  constructor(client, localStream, rtcConfig = {}) {
    super();
    this.client = client;
    this.localStream = localStream;
    this.rtcConfig = rtcConfig;
    this.connections = new Map(); // peer id -> RTCPeerConnection
    this.restarting = new Set();  // peer ids whose ICE restart awaits its answer
    // One signal at a time, in arrival order: a candidate must not overtake its offer's
    // setRemoteDescription.
    this.queue = Promise.resolve();
    const serially = (work) => {
      this.queue = this.queue.then(work).catch((error) => {
        this.dispatchEvent(new CustomEvent("failure", { detail: { error } }));
      });
    };
    client.addEventListener("joined", (e) => serially(() => this.#offerTo(e.detail.data.peer_id)));
    client.addEventListener("left", (e) => serially(() => this.#drop(e.detail.data.peer_id)));
    client.addEventListener("message", (e) => serially(() => this.#signal(e.detail)));
    client.addEventListener("resumed", () => serially(() => this.#restartAll()));
    client.addEventListener("new-identity", () => serially(() => {
      for (const peerId of [...this.connections.keys()]) this.#drop(peerId);
    }));
  }

  #connection(peerId) {
    let pc = this.connections.get(peerId);
    if (pc) return pc;
    const config = { ...this.rtcConfig };
    if (this.client.iceServers && !config.iceServers) config.iceServers = this.client.iceServers;
    pc = new RTCPeerConnection(config);
    this.connections.set(peerId, pc);
    if (this.localStream) {
      for (const track of this.localStream.getTracks()) pc.addTrack(track, this.localStream);
    }
    pc.addEventListener("icecandidate", (e) => {
      if (e.candidate) this.client.send("candidate", e.candidate.toJSON(), [peerId]);
    });
    pc.addEventListener("track", (e) => {
      this.dispatchEvent(new CustomEvent("track", { detail: { peerId, stream: e.streams[0] } }));
    });
    pc.addEventListener("connectionstatechange", () => {
      this.dispatchEvent(new CustomEvent("state", { detail: { peerId, state: pc.connectionState } }));
    });
    this.dispatchEvent(new CustomEvent("peer", { detail: { peerId } }));
    return pc;
  }

  async #offerTo(peerId, iceRestart = false) {
    const pc = this.#connection(peerId);
    if (iceRestart && this.client.iceServers && !this.rtcConfig.iceServers) {
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers: this.client.iceServers });
    }
    await pc.setLocalDescription(await pc.createOffer({ iceRestart }));
    if (iceRestart) this.restarting.add(peerId);
    this.client.send("offer", pc.localDescription.toJSON(), [peerId]);
  }

  async #restartAll() {
    for (const peerId of this.connections.keys()) await this.#offerTo(peerId, true);
  }

  async #signal(frame) {
    const from = frame.from;
    if (frame.event === "offer") {
      const pc = this.#connection(from);
      if (pc.signalingState === "have-local-offer") {
        // Both sides offered at once (both restarting): the peer with the smaller id yields.
        if (this.client.peerId > from) return;
        await pc.setLocalDescription({ type: "rollback" });
        this.restarting.delete(from);
      }
      await pc.setRemoteDescription(frame.data);
      await pc.setLocalDescription(await pc.createAnswer());
      this.client.send("answer", pc.localDescription.toJSON(), [from]);
    } else if (frame.event === "answer") {
      const pc = this.connections.get(from);
      if (!pc || pc.signalingState !== "have-local-offer") return;
      await pc.setRemoteDescription(frame.data);
      if (this.restarting.delete(from)) {
        this.dispatchEvent(new CustomEvent("restarted", { detail: { peerId: from } }));
      }
    } else if (frame.event === "candidate") {
      await this.#connection(from).addIceCandidate(frame.data);
    }
  }

  #drop(peerId) {
    const pc = this.connections.get(peerId);
    if (!pc) return;
    pc.close();
    this.connections.delete(peerId);
    this.restarting.delete(peerId);
    this.dispatchEvent(new CustomEvent("gone", { detail: { peerId } }));
  }
}
