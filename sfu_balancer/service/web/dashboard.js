// Operator dashboard (/dashboard): polls /api/v1/bridges and /api/v1/rooms every second.
// Outside dev mode the admin API wants a bearer token: open /dashboard?token=<admin token>.
// Rows: #bridges tbody tr[data-bridge], #rooms tbody tr[data-room].

const POLL_MS = 1000;
const token = new URLSearchParams(location.search).get('token') || '';
const headers = token ? {Authorization: `Bearer ${token}`} : {};
const bridgesBody = document.querySelector('#bridges tbody');
const roomsBody = document.querySelector('#rooms tbody');
const errorEl = document.getElementById('error');
const updatedEl = document.getElementById('updated');

async function getJson(path) {
  const response = await fetch(path, {headers, cache: 'no-store'});
  if (response.status === 401) {
    throw new Error('The admin API needs a token: open this page as /dashboard?token=<admin token>.');
  }
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

const fixed = (value, digits) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const mbps = bytesPerS => fixed(bytesPerS * 8 / 1e6, 2);
const percent = value => (Number.isFinite(value) ? `${Math.round(value * 100)} %` : '–');

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function stressClass(stress) {
  if (!Number.isFinite(stress)) return 'num muted';
  if (stress >= 1) return 'num stress-over';
  if (stress >= 0.8) return 'num stress-warn';
  return 'num stress-ok';
}

function bridgeRow(b) {
  const load = b.load || {};
  const tr = document.createElement('tr');
  tr.dataset.bridge = b.id;
  tr.dataset.state = b.state;
  let state = b.state;
  if (b.state === 'draining' && Number.isFinite(b.drain_deadline_s)) {
    state += ` (${Math.ceil(b.drain_deadline_s)} s left)`;
  }
  const cpuShare = b.capacity && b.capacity.cpu ? load.cpu / b.capacity.cpu : NaN;
  const stress = cell(fixed(b.stress, 2), stressClass(b.stress));
  if (Number.isFinite(b.stress) && b.stress >= 1) stress.title = 'overloaded';
  tr.append(
    cell(b.id), cell(b.host || ''), cell(b.region || ''), cell(state, `state-${b.state}`),
    cell(b.load ? percent(cpuShare) : '–', 'num'),
    cell(b.load ? percent(load.host_cpu) : '–', 'num'),
    cell(b.load ? mbps(load.bytes_in_per_s) : '–', 'num'),
    cell(b.load ? mbps(load.bytes_out_per_s) : '–', 'num'),
    stress,
    cell(b.load ? String(load.participants) : '–', 'num'),
    cell(b.load ? String(load.rooms) : '–', 'num'),
    cell(b.load ? String(load.relay_streams) : '–', 'num'),
    cell(b.load ? `${fixed(load.age_s, 1)} s` : '–', 'num'),
    cell(b.version || ''), cell(b.pid == null ? '' : String(b.pid), 'num'),
  );
  const c = b.capacity || {};
  tr.title = `capacity: ${c.cpu} cpu, ${c.egress_mbps} Mbps out, ${c.ingress_mbps} Mbps in`;
  return tr;
}

function roomRow(r) {
  const tr = document.createElement('tr');
  tr.dataset.room = r.name;
  const placement = Object.entries(r.bridges || {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([bridge, n]) => `${bridge}: ${n}`).join(', ');
  const relays = (r.relays || []).map(([a, b]) => `${a} ↔ ${b}`).join(', ');
  tr.append(cell(r.name), cell(String(r.participants), 'num'), cell(placement),
            cell(relays || '–', relays ? '' : 'muted'));
  return tr;
}

function fill(tbody, rows, columns, emptyText) {
  if (!rows.length) {
    const td = cell(emptyText, 'empty');
    td.colSpan = columns;
    const tr = document.createElement('tr');
    tr.className = 'empty';
    tr.append(td);
    rows = [tr];
  }
  tbody.replaceChildren(...rows);
}

async function poll() {
  try {
    const [bridges, rooms] = await Promise.all([getJson('/api/v1/bridges'),
                                                getJson('/api/v1/rooms')]);
    const bridgeList = [...bridges.bridges].sort((a, b) => a.id.localeCompare(b.id));
    fill(bridgesBody, bridgeList.map(bridgeRow), 15, 'No bridges connected.');
    fill(roomsBody, rooms.rooms.map(roomRow), 4, 'No rooms.');
    errorEl.textContent = '';
    updatedEl.textContent = `Updated ${new Date().toLocaleTimeString()}: ` +
      `${bridgeList.length} bridge(s), ${rooms.rooms.length} room(s).`;
    document.body.dataset.updated = String(Date.now());
  } catch (err) {
    errorEl.textContent = err.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
