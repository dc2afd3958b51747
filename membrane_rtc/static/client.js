// membrane-rtc JavaScript client: one ES module, no build step. Served at /client.js.
//
//   import { SignalingClient, MeshCall } from "/client.js";
//   const client = new SignalingClient("ws://127.0.0.1:8080/webrtc/demo");
//   const peerId = await client.connect();           // resolves on "authenticated"
//   const call = new MeshCall(client, localStream);  // one RTCPeerConnection per remote peer
//
// SignalingClient speaks the wire protocol (frames with event, data, from, to) and dispatches
// DOM events: "joined", "left", "error", "close" and "message" (any other event; detail = frame).

export class SignalingClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.peerId = null;
    this.socket = null;
  }

  /** Open the socket; resolve with our peer id, or reject with the server's error. */
  connect() {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(this.url);
      this.socket = socket;
      socket.addEventListener("message", (event) => {
        if (event.data === "pong") return;
        const frame = JSON.parse(event.data);
        if (frame.event === "authenticated") {
          this.peerId = frame.data.peer_id;
          resolve(this.peerId);
        } else if (frame.event === "error" && this.peerId === null) {
          reject(new SignalingError(frame.data));
        }
        const kinds = ["joined", "left", "error"];
        const type = kinds.includes(frame.event) ? frame.event : "message";
        this.dispatchEvent(new CustomEvent(type, { detail: frame }));
      });
      socket.addEventListener("close", (event) => {
        if (this.peerId === null) reject(new SignalingError({ description: "Connection refused", details: event.code }));
        this.dispatchEvent(new CustomEvent("close", { detail: { code: event.code, reason: event.reason } }));
      });
    });
  }

  /** Send an event to some peers (a list of ids) or to "all" but ourselves. */
  send(event, data, to) {
    this.socket.send(JSON.stringify({ event, data, to }));
  }

  close() {
    if (this.socket) this.socket.close();
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
export class MeshCall extends EventTarget {
  constructor(client, localStream, rtcConfig = {}) {
    super();
    this.client = client;
    this.localStream = localStream;
    this.rtcConfig = rtcConfig;
    this.connections = new Map(); // peer id -> RTCPeerConnection
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
  }

  #connection(peerId) {
    let pc = this.connections.get(peerId);
    if (pc) return pc;
    pc = new RTCPeerConnection(this.rtcConfig);
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

  async #offerTo(peerId) {
    const pc = this.#connection(peerId);
    await pc.setLocalDescription(await pc.createOffer());
    this.client.send("offer", pc.localDescription.toJSON(), [peerId]);
  }

  async #signal(frame) {
    const from = frame.from;
    if (frame.event === "offer") {
      const pc = this.#connection(from);
      await pc.setRemoteDescription(frame.data);
      await pc.setLocalDescription(await pc.createAnswer());
      this.client.send("answer", pc.localDescription.toJSON(), [from]);
    } else if (frame.event === "answer") {
      await this.connections.get(from)?.setRemoteDescription(frame.data);
    } else if (frame.event === "candidate") {
      await this.#connection(from).addIceCandidate(frame.data);
    }
  }

  #drop(peerId) {
    const pc = this.connections.get(peerId);
    if (!pc) return;
    pc.close();
    this.connections.delete(peerId);
    this.dispatchEvent(new CustomEvent("gone", { detail: { peerId } }));
  }
}
