// Join page (/r/<room>). Signaling is JSON over one WebSocket at /ws (docs/protocol.md).
// Where: GET /api/v1/signaling at start lists every balancer instance's /ws (the setting
// `signaling_urls`; docs/operations.md). The page starts on its own origin when listed, and
// each time its socket drops it reconnects to the next URL (round robin, with backoff) and
// joins again with its participant id. An empty list or a failed fetch: its own origin only.
// Per join: a publish RTCPeerConnection (we offer: send-only Opus + VP8, one encoding) and a
// subscribe RTCPeerConnection (the bridge offers, we answer). ICE is not trickled: every SDP
// is sent once gathering is complete.
//
// DOM contract (DESIGN.md §5), read by tests and users' scripts:
//   body[data-state]        joining | connected | reconnecting | failed
//   body[data-participant]  our participant id;  body[data-bridge]  the bridge we are on
//   video.remote[data-participant="ID"]  one per remote participant with active m-lines
// window.sfuStats() resolves to decoder/encoder counters of the current connections.

const MESSAGES = {
  capacity: 'The service is full right now; priority calls are still being connected. ' +
    'Please try again in a few minutes.',
  quota: 'Your organisation has reached its limit of people in calls at the same time. ' +
    'Please try again when someone has left.',
  forbidden: 'This link does not allow you into this room (the token is missing, wrong or ' +
    'expired). Ask the organiser for a new link.',
  no_bridge: 'No media server can take this call right now. Please try again in a few minutes.',
  room_full: 'This room is full. Please ask the organiser for another room.',
  bridge_error: 'The media server had a problem connecting you. Trying again…',
  rate_limited: 'Many people are joining right now. Trying again in a moment…',
  bad_request: 'The service did not understand this page. Please reload the page.',
  too_large: 'The service refused a message from this page as too large. Please reload.',
  internal: 'The service had an internal error. Trying again…',
  media: 'Your browser could not set up the call connection.',
  no_room: 'This address does not name a room. Room links look like /r/<room>.',
  left: 'You left the call.',
};
const RETRY_CODES = new Set(['bridge_error', 'rate_limited', 'internal', 'bad_request']);
const GATHER_TIMEOUT_MS = 5000;
const JOIN_TIMEOUT_MS = 30000;    // no reply to join: reopen the socket
const CONNECT_TIMEOUT_MS = 20000; // joined, but media never connected: join again
const PING_MS = 10000;
const SILENCE_MS = 35000;         // nothing from the server for this long: reopen the socket
const DISCOVERY_TIMEOUT_MS = 5000; // GET /api/v1/signaling

const body = document.body;
const statusEl = document.getElementById('status');
const remotesEl = document.getElementById('remotes');
const audioEl = document.getElementById('audio');
const localEl = document.getElementById('local');
const room = roomFromPath(location.pathname);
const token = new URLSearchParams(location.search).get('token') || '';

const s = {
  ws: null, pub: null, sub: null, media: null,
  participant: '', resume: '', subFingerprint: '',  // resume: proves the id on a new socket
  owners: new Map(),          // subscribe m-line mid -> publisher id ('' = idle)
  offers: Promise.resolve(),  // subscribe offers are applied one at a time
  generation: 0,              // bumps on every join attempt; stale async work checks it
  joinPending: false, rejoinDeferred: false, joinFailures: 0, reopenAttempt: 0,
  stopped: false, lastHeard: 0,
  signaling: [], signalingIndex: 0, // /ws URLs of the instances, and the one to use next
  timers: {},
};

function roomFromPath(path) {
  const m = path.match(/^\/r\/([^/]+)\/?$/);
  try { return m ? decodeURIComponent(m[1]) : ''; } catch { return ''; }
}

const trace = (...args) => console.info('[sfu]', ...args);

function setState(state, text) {
  if (body.dataset.state !== state) trace('state', state);
  body.dataset.state = state;
  if (text !== undefined) statusEl.textContent = text;
}

function setTimer(name, ms, fn) {
  clearTimeout(s.timers[name]);
  s.timers[name] = ms == null ? undefined : setTimeout(fn, ms);
}

const backoff = n => Math.min(8000, 500 * 2 ** n) * (0.75 + Math.random() * 0.5);

function fail(code, text) {
  s.stopped = true;
  setState('failed', text || MESSAGES[code] || 'The call could not continue.');
  body.dataset.error = code;
  for (const name of Object.keys(s.timers)) setTimer(name, null);
  closePeers();
  const ws = s.ws;
  s.ws = null;
  if (ws) ws.close();
  document.getElementById('leave').hidden = true;
  document.getElementById('retry').hidden = false;
}

// ---- WebSocket -----------------------------------------------------------------------------

function send(message) {
  if (s.ws && s.ws.readyState === WebSocket.OPEN) s.ws.send(JSON.stringify(message));
}

const ownSignaling = () =>
  `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;

// The instances' /ws URLs from GET /api/v1/signaling (public, same origin), or [] when the
// list cannot be read. An https page keeps only wss: URLs (the browser refuses ws: there).
async function fetchSignaling() {
  try {
    const response = await fetch('/api/v1/signaling', {
      cache: 'no-store', signal: AbortSignal.timeout(DISCOVERY_TIMEOUT_MS)});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const {ws} = await response.json();
    const secure = location.protocol === 'https:';
    const urls = [];
    for (const item of Array.isArray(ws) ? ws : []) {
      try {
        const url = new URL(item);
        if (url.protocol === 'wss:' || (url.protocol === 'ws:' && !secure)) urls.push(url.href);
      } catch { /* not a URL: skipped */ }
    }
    return urls;
  } catch (err) {
    console.warn('signaling list unavailable, using this origin', err);
    return [];
  }
}

function openSocket() {
  if (s.stopped) return;
  const url = s.signaling[s.signalingIndex] || ownSignaling();
  let ws;
  try { ws = new WebSocket(url); } catch (err) {
    console.warn('signaling URL refused', url, err);
    socketLost();
    return;
  }
  trace('signaling', url);
  s.ws = ws;
  ws.onopen = () => {
    if (ws !== s.ws) return;
    s.lastHeard = performance.now();
    join();
  };
  ws.onmessage = ev => {
    if (ws !== s.ws) return;
    s.lastHeard = performance.now();
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    onMessage(msg);
  };
  ws.onclose = () => { if (ws === s.ws) socketLost(); };
}

function socketLost() {
  const ws = s.ws;
  s.ws = null;
  if (ws) { ws.onclose = null; ws.close(); }
  s.joinPending = s.rejoinDeferred = false;
  setTimer('join', null);
  closePeers();
  if (s.stopped) return;
  setState('reconnecting', 'Connection to the service lost. Reconnecting…');
  // round robin: the instance behind this socket may be gone, try the next one
  if (s.signaling.length) s.signalingIndex = (s.signalingIndex + 1) % s.signaling.length;
  setTimer('reopen', backoff(s.reopenAttempt++), openSocket);
}

function keepalive() {
  if (s.stopped) return;
  if (s.ws && s.ws.readyState === WebSocket.OPEN) {
    if (performance.now() - s.lastHeard > SILENCE_MS) socketLost();
    else send({type: 'ping'});
  }
}

function onMessage(msg) {
  if (msg.type === 'offer') trace('offer', msg.seq, JSON.stringify(msg.tracks));
  else if (msg.type !== 'pong') trace('recv', JSON.stringify({...msg, sdp: undefined}));
  switch (msg.type) {
    case 'joined': onJoined(msg); break;
    case 'offer': {
      const gen = s.generation;
      s.offers = s.offers.then(() => onOffer(msg, gen)).catch(err => {
        console.warn('subscribe offer failed', err);
      });
      break;
    }
    case 'rejoin': onRejoin(msg.reason); break;
    case 'error': onError(msg); break;
    default: break; // pong, left
  }
}

function onRejoin(reason) {
  // With a join in flight, the hint may concern the placement that join is getting: wait for
  // its reply, then join again (an error reply retries anyway).
  if (s.joinPending) { s.rejoinDeferred = true; return; }
  setState('reconnecting', reason === 'bridge_failed'
    ? 'The media server stopped. Moving you to another one…'
    : 'Moving you to another media server…');
  join();
}

function onError(msg) {
  const code = String(msg.code || 'internal');
  if (msg.fatal) { fail(code, MESSAGES[code] || msg.message); return; }
  // Errors carry no request id: one about an answer (a stale subscribe offer) must not be
  // taken for the reply to the join in flight.
  const aboutAnswer = msg.about === 'answer' || /answer|not joined/i.test(msg.message || '');
  if (!s.joinPending || aboutAnswer) { console.warn('service error', code, msg.message); return; }
  s.joinPending = false;
  s.rejoinDeferred = false;
  setTimer('join', null);
  s.joinFailures += 1;
  const limit = code === 'bad_request' ? 3 : Infinity;
  if (!RETRY_CODES.has(code) || s.joinFailures >= limit) {
    fail(code, MESSAGES[code] || msg.message);
    return;
  }
  statusEl.textContent = MESSAGES[code] || msg.message;
  setTimer('retry', backoff(s.joinFailures - 1), join);
}

// ---- Publish connection -----------------------------------------------------------------------

async function getMedia() {
  const tries = [{audio: true, video: {width: 640, height: 480}}, {audio: true}, {video: true}];
  for (const constraints of tries) {
    try { return await navigator.mediaDevices.getUserMedia(constraints); } catch (err) {
      console.warn('getUserMedia', constraints, err);
    }
  }
  return null; // join as a viewer
}

function preferCodec(transceiver, kind) {
  const want = kind === 'video' ? 'video/vp8' : 'audio/opus';
  if (typeof transceiver.setCodecPreferences !== 'function') return;
  for (const source of [RTCRtpReceiver, RTCRtpSender]) {
    const codecs = source.getCapabilities?.(kind)?.codecs;
    if (!codecs) continue;
    const first = codecs.filter(c => c.mimeType.toLowerCase() === want);
    if (!first.length) return;
    const rest = codecs.filter(c => c.mimeType.toLowerCase() !== want);
    try { transceiver.setCodecPreferences([...first, ...rest]); return; } catch { /* next */ }
  }
}

const gathered = pc => new Promise(resolve => {
  if (pc.iceGatheringState === 'complete') { resolve(); return; }
  const done = () => {
    if (pc.iceGatheringState !== 'complete') return;
    pc.removeEventListener('icegatheringstatechange', done);
    resolve();
  };
  pc.addEventListener('icegatheringstatechange', done);
  setTimeout(resolve, GATHER_TIMEOUT_MS); // send what we have
});

async function join() {
  if (s.stopped || !s.ws || s.ws.readyState !== WebSocket.OPEN) return;
  const gen = ++s.generation;
  setTimer('retry', null);
  closePeers();
  const pub = new RTCPeerConnection();
  s.pub = pub;
  pub.onconnectionstatechange = () => onPublishState(pub);
  if (s.media) {
    for (const track of s.media.getTracks()) {
      const t = pub.addTransceiver(track, {direction: 'sendonly', streams: [s.media]});
      preferCodec(t, track.kind);
    }
  } else {
    preferCodec(pub.addTransceiver('video', {direction: 'recvonly'}), 'video');
  }
  try {
    await pub.setLocalDescription(await pub.createOffer());
    await gathered(pub);
  } catch (err) {
    if (gen === s.generation) fail('media', `${MESSAGES.media} (${err.message})`);
    return;
  }
  if (gen !== s.generation || s.stopped) return;
  const message = {type: 'join', room, sdp: pub.localDescription.sdp};
  if (token) message.token = token;
  if (s.participant) Object.assign(message, {participant: s.participant, resume: s.resume});
  s.joinPending = true;
  trace('join', s.participant || '(new)');
  send(message);
  setTimer('join', JOIN_TIMEOUT_MS, () => { if (gen === s.generation) socketLost(); });
}

async function onJoined(msg) {
  s.joinPending = false;
  s.joinFailures = 0;
  setTimer('join', null);
  s.participant = msg.participant;
  s.resume = msg.resume || '';
  body.dataset.participant = msg.participant;
  body.dataset.bridge = msg.bridge;
  if (s.rejoinDeferred) { s.rejoinDeferred = false; join(); return; }
  const pub = s.pub;
  const gen = s.generation;
  if (!pub) return;
  try {
    await pub.setRemoteDescription({type: 'answer', sdp: msg.sdp});
  } catch (err) {
    if (gen !== s.generation) return;
    console.warn('publish answer refused', err);
    setTimer('retry', backoff(s.joinFailures++), join);
    return;
  }
  setTimer('connect', CONNECT_TIMEOUT_MS, () => {
    if (gen === s.generation && body.dataset.state !== 'connected') join();
  });
  onPublishState(pub);
}

function onPublishState(pub) {
  if (pub !== s.pub) return;
  const state = pub.connectionState;
  trace('publish', state);
  if (state === 'connected' && pub.remoteDescription) {
    setTimer('connect', null);
    s.reopenAttempt = 0;
    setState('connected', `Connected to ${room}.`);
  } else if (state === 'failed') {
    setState('reconnecting', 'Media connection lost. Reconnecting…');
    const gen = s.generation;
    setTimer('retry', backoff(s.joinFailures++), () => { if (gen === s.generation) join(); });
  } else if (state === 'disconnected' && body.dataset.state === 'connected') {
    statusEl.textContent = 'The media connection is unstable…';
  }
}

// ---- Subscribe connection ---------------------------------------------------------------------

const fingerprintOf = sdp => (sdp.match(/^a=fingerprint:.*$/m) || [''])[0].trim();

function newSubscriber() {
  if (s.sub) s.sub.close();
  const sub = new RTCPeerConnection();
  sub.ontrack = () => render();
  s.sub = sub;
  return sub;
}

async function onOffer(msg, gen) {
  if (gen !== s.generation || s.stopped) return;
  // One subscribe connection per join; an offer from another bridge (another DTLS
  // fingerprint) starts a fresh one.
  const fingerprint = fingerprintOf(msg.sdp);
  let sub = s.sub;
  if (!sub || sub.signalingState === 'closed' || fingerprint !== s.subFingerprint) {
    sub = newSubscriber();
    s.subFingerprint = fingerprint;
  }
  s.owners = new Map((msg.tracks || []).map(t => [String(t.mid), t.participant || '']));
  await sub.setRemoteDescription({type: 'offer', sdp: msg.sdp});
  await sub.setLocalDescription(await sub.createAnswer());
  await gathered(sub);
  if (sub !== s.sub || gen !== s.generation) return;
  send({type: 'answer', sdp: sub.localDescription.sdp, seq: msg.seq});
  render();
}

function remoteTracks() {
  const byParticipant = new Map();
  if (!s.sub || s.sub.signalingState === 'closed') return byParticipant;
  for (const t of s.sub.getTransceivers()) {
    const who = t.mid == null ? '' : s.owners.get(t.mid) || '';
    if (!who || t.stopped) continue;
    const entry = byParticipant.get(who) || {};
    entry[t.receiver.track.kind] = t.receiver.track;
    byParticipant.set(who, entry);
  }
  return byParticipant;
}

function attach(el, track) {
  const current = el.srcObject && el.srcObject.getTracks()[0];
  if (current === track) return;
  el.srcObject = new MediaStream([track]);
  el.play().catch(() => { /* autoplay may wait for a click */ });
}

function render() {
  const want = remoteTracks();
  for (const fig of remotesEl.querySelectorAll('figure[data-participant]')) {
    if (!want.has(fig.dataset.participant)) fig.remove();
  }
  for (const el of audioEl.querySelectorAll('audio[data-participant]')) {
    if (!want.get(el.dataset.participant)?.audio) el.remove();
  }
  for (const [who, tracks] of want) {
    const sel = `[data-participant="${CSS.escape(who)}"]`;
    let fig = remotesEl.querySelector(`figure${sel}`);
    if (!fig) {
      fig = document.createElement('figure');
      fig.className = 'tile';
      fig.dataset.participant = who;
      const video = document.createElement('video');
      video.className = 'remote';
      video.dataset.participant = who;
      video.autoplay = video.playsInline = video.muted = true;
      video.setAttribute('autoplay', '');
      video.setAttribute('playsinline', '');
      video.setAttribute('muted', '');
      const caption = document.createElement('figcaption');
      caption.textContent = who;
      fig.append(video, caption);
      remotesEl.append(fig);
    }
    if (tracks.video) attach(fig.querySelector('video.remote'), tracks.video);
    if (tracks.audio) {
      let audio = audioEl.querySelector(`audio${sel}`);
      if (!audio) {
        audio = document.createElement('audio');
        audio.autoplay = true;
        audio.dataset.participant = who;
        audioEl.append(audio);
      }
      attach(audio, tracks.audio);
    }
  }
}

function closePeers() {
  for (const pc of [s.pub, s.sub]) {
    if (!pc) continue;
    pc.onconnectionstatechange = null;
    pc.ontrack = null;
    pc.close();
  }
  s.pub = s.sub = null;
  s.subFingerprint = '';
  s.owners = new Map();
  setTimer('connect', null);
  render();
}

// ---- Stats for tests and scripts ------------------------------------------------------------

window.sfuStats = async () => {
  const out = {state: body.dataset.state, participant: s.participant,
               bridge: body.dataset.bridge || '', remotes: [], publish: []};
  const [sub, pub, owners] = [s.sub, s.pub, s.owners];
  if (sub && sub.signalingState !== 'closed') {
    (await sub.getStats()).forEach(r => {
      if (r.type !== 'inbound-rtp') return;
      out.remotes.push({participant: owners.get(r.mid) || '', kind: r.kind, mid: r.mid,
        framesDecoded: r.framesDecoded || 0, frameWidth: r.frameWidth || 0,
        frameHeight: r.frameHeight || 0, packetsReceived: r.packetsReceived || 0,
        packetsLost: r.packetsLost || 0, bytesReceived: r.bytesReceived || 0, ssrc: r.ssrc,
        lastPacketReceivedTimestamp: r.lastPacketReceivedTimestamp || 0});
    });
  }
  if (pub && pub.signalingState !== 'closed') {
    (await pub.getStats()).forEach(r => {
      if (r.type !== 'outbound-rtp') return;
      out.publish.push({kind: r.kind, mid: r.mid, framesEncoded: r.framesEncoded || 0,
        packetsSent: r.packetsSent || 0, bytesSent: r.bytesSent || 0});
    });
  }
  return out;
};

// ---- Start and leave ------------------------------------------------------------------------

function leave() {
  if (s.stopped) return;
  send({type: 'leave'});
  if (s.media) for (const track of s.media.getTracks()) track.stop();
  fail('left');
}

document.getElementById('leave').addEventListener('click', leave);
document.getElementById('retry').addEventListener('click', () => location.reload());
document.addEventListener('click', () => {
  for (const el of audioEl.querySelectorAll('audio')) el.play().catch(() => {});
});
window.addEventListener('pagehide', () => send({type: 'leave'}));

async function start() {
  if (!room) { fail('no_room'); return; }
  document.title = `${room} · call`;
  document.getElementById('room').textContent = room;
  setState('joining', 'Starting your camera and microphone…');
  const [media, listed] = await Promise.all([getMedia(), fetchSignaling()]);
  s.media = media;
  const own = new URL(ownSignaling()).href;
  s.signaling = listed.length ? listed : [own];
  const here = s.signaling.indexOf(own);
  // start where the page came from; a page served elsewhere picks an instance at random
  s.signalingIndex = here >= 0 ? here : Math.floor(Math.random() * s.signaling.length);
  trace('signaling list', JSON.stringify(s.signaling));
  if (s.media) {
    localEl.srcObject = s.media;
    localEl.play().catch(() => {});
  }
  statusEl.textContent = s.media ? 'Joining…' : 'No camera or microphone: joining to watch…';
  setInterval(keepalive, PING_MS);
  openSocket();
}

start();
