// vfleet console: a read-mostly view of the fleet over the daemon's own API.
// Everything the API returns is put into the page as text (never as HTML):
// hostnames, driver names and the like come from agents and are not trusted.
/* global document, localStorage, fetch, Node, setInterval, clearInterval, navigator, location -- browser globals; the lint config targets Node */

const TOKEN_KEY = 'vfleet.token';
const REFRESH_MS = 5000;
const EVENTS_SHOWN = 40;
const VIOLATIONS_SHOWN = 8;
const EVENT_PAGE = 1000;
/** Host details read at once for the VF map. */
const HOST_FETCHES = 8;
const ZERO_MAC = '00:00:00:00:00:00';
const HOLDING = new Set(['pending', 'configured', 'attached', 'releasing']);

const $ = (id) => document.getElementById(id);
const state = { token: localStorage.getItem(TOKEN_KEY), role: null, info: null, events: [], eventSeq: 0, timer: null, data: {} };

class ApiError extends Error {
  constructor(status, body) {
    super(body?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.code ?? 'HTTP_' + status;
  }
}

// ---- DOM helpers -----------------------------------------------------------

/** h('td', { class: 'mono' }, 'text', child) — children are nodes or text. */
function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const pill = (text, kind = text) => h('span', { class: `pill pill-${kind}` }, text);
const mono = (text) => h('span', { class: 'mono' }, text);
const empty = (text) => h('p', { class: 'empty' }, text);
const errorText = (err) => `${err.code ?? 'ERROR'}: ${err.message}`;

function table(headers, rows, cls = '') {
  return h('table', { class: `grid ${cls}` }, h('thead', null, h('tr', null, headers.map((t) => h('th', null, t)))), h('tbody', null, rows));
}

function ago(iso) {
  if (!iso) return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return new Date(iso).toLocaleString();
}

const gbps = (mbps) => (mbps === null || mbps === undefined ? '—' : mbps >= 1000 ? `${mbps / 1000}G` : `${mbps}M`);

// ---- API -------------------------------------------------------------------

async function api(method, path, body) {
  return (await exchange(method, path, body)).data;
}

/** One request: the answer's body, and the next page's path when a list has more (Link: rel="next"). */
async function exchange(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: { authorization: `Bearer ${state.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return { data: null, next: null };
  const data = await res.json().catch(() => null);
  if (res.status === 401) signOut('The token was refused; sign in again.');
  if (!res.ok) throw new ApiError(res.status, data?.error);
  return { data, next: nextLink(res.headers.get('link')) };
}

function nextLink(header) {
  const m = header ? /<(\/[^>]*)>\s*;\s*rel="?next"?/.exec(header) : null;
  return m ? m[1] : null;
}

/** A whole list: every page, following the Link headers. */
async function apiAll(path) {
  let items = [];
  for (let next = path; next; ) {
    const page = await exchange('GET', next);
    items = items.concat(page.data);
    next = page.next;
  }
  return items;
}

/**
 * The VF map needs each host's inventory: GET /v1/hosts gives summaries only,
 * so each host's detail is read (a few at a time, not one burst per host).
 */
async function hostDetails() {
  const names = (await apiAll('/v1/hosts')).map((s) => s.name);
  const details = [];
  for (let i = 0; i < names.length; i += HOST_FETCHES) {
    const batch = names.slice(i, i + HOST_FETCHES).map((n) => api('GET', `/v1/hosts/${encodeURIComponent(n)}`).catch(() => null));
    details.push(...(await Promise.all(batch)));
  }
  // A host deleted between the list and its detail is left out.
  return details.filter((d) => d !== null);
}

/** Resolves to { ok, value } or { ok: false, error }, so one refused panel does not blank the others. */
const settle = (promise) => promise.then((value) => ({ ok: true, value }), (error) => ({ ok: false, error }));

/** The audit log only pages forward: keep a cursor and the latest few events. */
async function loadEvents() {
  for (let page = 0; page < 5; page++) {
    const batch = await api('GET', `/v1/events?after=${state.eventSeq}&limit=${EVENT_PAGE}`);
    if (batch.length === 0) break;
    state.eventSeq = batch[batch.length - 1].seq;
    state.events = state.events.concat(batch).slice(-EVENTS_SHOWN);
    if (batch.length < EVENT_PAGE) break;
  }
  return state.events;
}

async function refresh() {
  const [hosts, networks, allocations, audit, events, tenants, physnets] = await Promise.all([
    settle(hostDetails()),
    settle(apiAll('/v1/networks')),
    settle(apiAll('/v1/allocations')),
    settle(api('GET', '/v1/audit/isolation')),
    settle(loadEvents()),
    settle(apiAll('/v1/tenants')),
    settle(apiAll('/v1/physnets')),
  ]);
  if (!state.token) return;
  state.data = { hosts, networks, allocations, audit, events, tenants, physnets };
  render();
  $('refresh-status').textContent = `updated ${new Date().toLocaleTimeString()}`;
}

// ---- rendering -------------------------------------------------------------

/** A panel's content, or why it cannot be shown to this token. */
function panel(id, result, draw) {
  const target = $(id);
  if (!result.ok) {
    const text = result.error.status === 403 ? `Not available to ${state.role ?? 'this token'}.` : errorText(result.error);
    target.replaceChildren(h('p', { class: result.error.status === 403 ? 'empty' : 'error' }, text));
    return;
  }
  target.replaceChildren(draw(result.value));
}

function render() {
  const d = state.data;
  const allocs = d.allocations.ok ? d.allocations.value : [];
  renderFirstStep(d);
  renderSummary(d, allocs);
  panel('hosts', d.hosts, (hosts) => drawHosts(hosts, allocs));
  panel('allocations', d.allocations, drawAllocations);
  panel('networks', d.networks, drawNetworks);
  panel('audit', d.audit, drawAudit);
  panel('events', d.events, drawEvents);
  fillSelect('tenants', d.tenants.ok ? d.tenants.value.map((t) => t.name) : []);
  fillSelect('networks', d.networks.ok ? d.networks.value.map((n) => n.name) : []);
  const physnets = d.physnets.ok ? d.physnets.value.map((p) => p.name) : [];
  fillSelect('physnets', physnets);
  $('no-physnet').hidden = physnets.length > 0;
}

/**
 * A host without VFs has no node policy applied yet: that is the first thing
 * to do, so say how (an empty state, not an error).
 */
function renderFirstStep(d) {
  const hosts = d.hosts.ok ? d.hosts.value : [];
  const bare = hosts.filter((x) => x.inventory.pfs.length > 0 && x.inventory.pfs.every((pf) => pf.numVfs === 0));
  const target = $('first-step');
  target.hidden = bare.length === 0;
  if (bare.length === 0) return;
  const command = (host) => `npx sriovctl --server ${location.origin} host apply -f node-policy.yaml --host ${host.name}`;
  target.replaceChildren(
    h('h3', null, 'First step: apply a node policy'),
    h('p', null, `${bare.map((x) => x.name).join(', ')} ${bare.length === 1 ? 'has' : 'have'} SR-IOV PFs but no VFs yet. A node policy says how many VFs each PF gets and which physnet they serve; the host's agent applies it. With the admin token in SRIOV_TOKEN, run:`),
    bare.map((host) => h('div', { class: 'command' }, mono(command(host)), copyButton(command(host), 'Copy'))),
    h('p', { class: 'muted small' }, 'node-policy.yaml is described in the README ("A node policy"). Networks and allocations come after that.'));
}

/** The demo runs on a simulated NIC: say so on every page. */
function renderBanner(info) {
  const banner = $('demo-banner');
  banner.hidden = !info.demo;
  if (!info.demo) return;
  banner.replaceChildren(
    h('strong', null, 'Demo — simulated hardware. '),
    `${info.controllerHost} is a simulated dual-port E810, not a real NIC (host backend: ${info.hostBackend}). The demo tenant, its network demo-n3 and the containers upf-1 and smf-1 were created at the first start. Restart sriovd with --no-demo (and a fresh --data-dir) to start empty.`);
}

/** Copies `text` to the clipboard; where that is refused (a non-local http origin), shows it selected instead. */
function copyButton(text, label = 'Copy id') {
  return h('button', {
    type: 'button', class: 'small ghost-light', title: `copy ${text}`,
    onclick: (e) => {
      const button = e.currentTarget;
      const done = () => (button.textContent = 'Copied');
      const show = () => button.replaceWith(h('input', { class: 'mono small copy-text', value: text, readonly: true, onfocus: (f) => f.currentTarget.select() }));
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, show);
      else show();
    },
  }, label);
}

function renderSummary(d, allocs) {
  const hosts = d.hosts.ok ? d.hosts.value : null;
  const pfs = hosts ? hosts.flatMap((x) => x.inventory.pfs) : [];
  const totalVfs = pfs.reduce((n, pf) => n + pf.vfs.length, 0);
  const holding = allocs.filter((a) => HOLDING.has(a.state));
  const violations = d.audit.ok ? d.audit.value.violations.length : null;
  const card = (label, value, detail, kind = '') => h('div', { class: `stat ${kind}` }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-detail' }, detail));
  $('summary').replaceChildren(
    card('Hosts', hosts ? `${hosts.filter((x) => x.state === 'ready').length} / ${hosts.length}` : '—', 'ready / known', hosts?.some((x) => x.state !== 'ready') ? 'warn' : ''),
    card('VFs', hosts ? `${totalVfs - holding.length} free` : '—', hosts ? `${holding.length} allocated of ${totalVfs}` : 'hosts not visible'),
    card('Allocations', String(holding.length), `${allocs.filter((a) => a.state === 'pending').length} pending · ${allocs.filter((a) => a.state === 'failed').length} failed`, allocs.some((a) => a.state === 'failed') ? 'bad' : ''),
    card('Networks', d.networks.ok ? String(d.networks.value.length) : '—', d.tenants.ok ? `${d.tenants.value.length} tenants` : ''),
    card('Isolation', violations === null ? '—' : violations === 0 ? 'clean' : `${violations} violations`, 'from reported VF config', violations ? 'bad' : violations === 0 ? 'ok' : ''),
  );
}

/** What the audit calls configured: anything a tenant could have left behind on a VF. */
const isConfigured = (vf) => vf.mac !== ZERO_MAC || vf.vlan !== 0 || vf.trust === true || vf.spoofChk === false || vf.maxTxRateMbps !== 0 || vf.minTxRateMbps !== 0;

function drawHosts(hosts, allocs) {
  if (hosts.length === 0) return empty('No host has reported yet. Start sriovd (or sriovd agent) on a host.');
  const held = new Map(allocs.filter((a) => HOLDING.has(a.state)).map((a) => [`${a.host}|${a.pfPciAddress}|${a.vfIndex}`, a]));
  return h('div', { class: 'hosts' }, hosts.map((host) => drawHost(host, held)));
}

function drawHost(host, held) {
  const vfs = host.inventory.pfs.reduce((n, pf) => n + pf.vfs.length, 0);
  const used = host.inventory.pfs.reduce((n, pf) => n + pf.vfs.filter((vf) => held.has(`${host.name}|${pf.pciAddress}|${vf.index}`)).length, 0);
  const head = h('div', { class: 'host-head' },
    h('span', { class: 'host-name' }, host.name), pill(host.state),
    h('span', { class: 'muted' }, `heartbeat ${ago(host.lastHeartbeat)}`),
    h('span', { class: 'muted' }, `${host.inventory.pfs.length} PFs · ${used}/${vfs} VFs allocated`));
  const rows = host.inventory.pfs.map((pf) => drawPf(host, pf, held));
  return h('div', { class: 'host' }, head, table(['PF', 'PCI', 'driver', 'link', 'NUMA', 'VFs', 'physnet', 'guaranteed', 'VF map'], rows, 'pfs'));
}

function drawPf(host, pf, held) {
  const onPf = pf.vfs.map((vf) => held.get(`${host.name}|${pf.pciAddress}|${vf.index}`)).filter(Boolean);
  const committed = onPf.reduce((n, a) => n + a.minTxRateMbps, 0);
  return h('tr', null,
    h('td', null, h('strong', null, pf.name), pf.linkState === 'up' ? '' : h('span', { class: 'muted' }, ` (${pf.linkState})`),
      // Drained: no new allocation until `sriovctl pf undrain`; `?? []` for a controller older than drains.
      (host.drainedPfs ?? []).includes(pf.pciAddress) ? h('span', { class: 'muted', title: 'takes no new allocation until undrained' }, ' DRAINED') : ''),
    h('td', null, mono(pf.pciAddress)),
    h('td', null, pf.driver ?? '—'),
    h('td', { class: 'num' }, gbps(pf.linkSpeedMbps)),
    h('td', { class: 'num' }, pf.numaNode ?? '—'),
    h('td', { class: 'num' }, `${pf.numVfs}/${pf.totalVfs}`),
    h('td', null, host.physnets[pf.pciAddress] ?? h('span', { class: 'muted' }, 'none')),
    h('td', null, bandwidthBar(committed, pf.linkSpeedMbps)),
    h('td', null, vfMap(host, pf, held)));
}

function bandwidthBar(committed, link) {
  if (!link) return h('span', { class: 'muted' }, committed ? gbps(committed) : '—');
  const fill = h('span', { class: 'bar-fill' });
  fill.style.width = `${Math.min(100, (100 * committed) / link)}%`;
  return h('span', { class: 'bar', title: `${committed} of ${link} Mbps guaranteed` }, fill, h('span', { class: 'bar-text' }, `${gbps(committed)} / ${gbps(link)}`));
}

function vfMap(host, pf, held) {
  return h('div', { class: 'vfmap' }, pf.vfs.map((vf) => {
    const a = held.get(`${host.name}|${pf.pciAddress}|${vf.index}`);
    const kind = a ? (a.state === 'pending' || a.state === 'releasing' ? 'pending' : 'allocated') : isConfigured(vf) ? 'stray' : 'free';
    const title = a
      ? `vf ${vf.index} ${vf.pciAddress}: ${a.state}, ${a.tenant}/${a.network}, ${a.workload.kind} ${a.workload.name}, ${a.mac}`
      : `vf ${vf.index} ${vf.pciAddress}: ${kind === 'stray' ? `configured without allocation (MAC ${vf.mac}, VLAN ${vf.vlan})` : 'free'}`;
    return h('span', { class: `vf ${kind}`, title });
  }));
}

function drawAllocations(allocs) {
  const shown = $('show-released').checked ? allocs : allocs.filter((a) => HOLDING.has(a.state) || a.state === 'failed');
  if (shown.length === 0) return empty('No allocations.');
  const rows = shown
    .slice()
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt))
    .map((a) => h('tr', null,
      h('td', { class: 'id' }, h('span', { class: 'mono', title: a.id }, a.id.slice(0, 8)), ' ', copyButton(a.id), h('div', { class: 'muted small' }, ago(a.createdAt))),
      h('td', null, pill(a.state), a.reason ? h('div', { class: `small ${a.state === 'failed' ? 'error' : 'warn-text'}` }, a.reason) : ''),
      h('td', null, `${a.workload.kind} `, h('strong', null, a.workload.name)),
      h('td', null, attachmentOf(a)),
      h('td', null, a.tenant, h('span', { class: 'muted' }, ' / '), a.network),
      h('td', null, a.host, h('span', { class: 'muted' }, ' / '), a.pf, h('span', { class: 'muted' }, ` vf ${a.vfIndex}`), h('div', { class: 'mono small muted' }, a.pciAddress)),
      h('td', null, mono(a.mac)),
      h('td', { class: 'num' }, a.vlan),
      h('td', { class: 'num' }, a.minTxRateMbps ? gbps(a.minTxRateMbps) : '—'),
      h('td', null, allocationAction(a))));
  return table(['id', 'state', 'workload', 'attached to', 'tenant / network', 'host / PF / VF', 'MAC', 'VLAN', 'min tx', ''], rows);
}

/** Release what holds a VF; clear a failed record (its VF is already free); a release in progress has nothing to do. */
function allocationAction(a) {
  if (a.state === 'failed') return h('button', { type: 'button', class: 'small', title: 'remove this failed allocation (its VF is already free)', onclick: (e) => release(a, e.currentTarget) }, 'Clear');
  if (HOLDING.has(a.state) && a.state !== 'releasing') return h('button', { type: 'button', class: 'small danger', onclick: (e) => release(a, e.currentTarget) }, 'Release');
  return '';
}

/** Where the VF went: a container namespace (with its interface and addresses) or a VM. */
function attachmentOf(a) {
  const at = a.attachment;
  if (!at) return h('span', { class: 'muted' }, '—');
  if (at.kind === 'vm') return h('span', null, 'VM ', h('strong', null, at.vm), at.failover ? pill('failover', 'ok') : '');
  return h('span', null, mono(at.ifname), h('span', { class: 'muted' }, ' in '), mono(at.netns), h('div', { class: 'mono small muted' }, at.ips.join(', ')));
}

function drawNetworks(networks) {
  if (networks.length === 0) return empty('No networks.');
  const flags = (n) => [n.trust ? pill('trust', 'warn') : '', n.spoofChk ? '' : pill('spoofchk off', 'bad'), n.vlan === 0 ? pill('untagged', 'warn') : ''];
  const rows = networks.map((n) => h('tr', null,
    h('td', null, h('strong', null, n.name)),
    h('td', null, n.tenant),
    h('td', null, n.physnet),
    h('td', { class: 'num' }, n.vlan),
    h('td', { class: 'num' }, n.qos),
    h('td', null, n.deviceType),
    h('td', { class: 'num' }, `${n.minTxRateMbps ? gbps(n.minTxRateMbps) : '—'} / ${n.maxTxRateMbps ? gbps(n.maxTxRateMbps) : '—'}`),
    h('td', null, flags(n))));
  return table(['name', 'tenant', 'physnet', 'VLAN', 'QoS', 'device', 'min / max', 'flags'], rows);
}

function drawAudit(report) {
  const shared = Object.entries(report.reachability);
  return h('div', null, report.violations.length === 0 ? h('p', { class: 'ok-text' }, 'No isolation violations in the reported VF configuration.') : drawViolations(report.violations),
    h('p', { class: 'muted small' }, `${report.segments.length} L2 segments in use · ${shared.length ? `${shared.length} tenants share a segment` : 'no tenant shares a segment'} · ${ago(report.generatedAt)}`));
}

/** Counts by kind first, then the first few in full: a drifting host can report hundreds. */
function drawViolations(violations) {
  const counts = new Map();
  for (const v of violations) counts.set(v.kind, (counts.get(v.kind) ?? 0) + 1);
  const shown = violations.slice(0, VIOLATIONS_SHOWN);
  return h('div', null,
    h('div', { class: 'kinds' }, [...counts].map(([kind, n]) => pill(`${n} ${kind}`, 'bad'))),
    h('ul', { class: 'violations' }, shown.map((v) => h('li', null, h('strong', null, v.kind), ' ', v.message))),
    violations.length > shown.length ? h('p', { class: 'muted small' }, `… and ${violations.length - shown.length} more (GET /v1/audit/isolation)`) : '');
}

function drawEvents(events) {
  if (events.length === 0) return empty('No events.');
  return h('ol', { class: 'events' }, events.slice().reverse().map((e) => h('li', null,
    h('div', { class: 'event-head' }, h('strong', null, e.action), ' ', mono(e.object)),
    h('div', { class: 'muted small' }, `#${e.seq} · ${e.actor} · ${ago(e.at)}`),
    change(e.before, e.after))));
}

/** A one-line before → after, for the state-like values events carry. */
function change(before, after) {
  const brief = (v) => (v === null || v === undefined ? '∅' : typeof v === 'object' ? (v.state ?? v.name ?? v.id ?? '{…}') : String(v));
  if (before === null && after === null) return '';
  return h('div', { class: 'small change', title: JSON.stringify({ before, after }, null, 1) }, brief(before), ' → ', brief(after));
}

/** Replace a select's options, keeping what the user had chosen. */
function fillSelect(kind, names) {
  for (const select of document.querySelectorAll(`select[data-options="${kind}"]`)) {
    const chosen = select.value;
    select.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
    if (names.includes(chosen)) select.value = chosen;
  }
}

// ---- actions ---------------------------------------------------------------

async function release(a, button) {
  button.disabled = true;
  try {
    await api('DELETE', `/v1/allocations/${encodeURIComponent(a.id)}`);
    await refresh();
  } catch (err) {
    button.replaceWith(h('span', { class: 'error small' }, errorText(err)));
  }
}

const optionalInt = (value) => (value === '' ? undefined : Number(value));

const ACTIONS = {
  'tenant-form': (f) => api('POST', '/v1/tenants', { name: f.name.value.trim() }).then((t) => `Tenant ${t.name} created.`),
  'network-form': (f) =>
    api('POST', '/v1/networks', {
      name: f.name.value.trim(),
      tenant: f.tenant.value,
      physnet: f.physnet.value,
      // Empty: the physnet's next free tenant VLAN.
      vlan: optionalInt(f.vlan.value),
      qos: optionalInt(f.qos.value),
      minTxRateMbps: optionalInt(f.minTxRateMbps.value),
      maxTxRateMbps: optionalInt(f.maxTxRateMbps.value),
      deviceType: f.deviceType.value,
    }).then((n) => `Network ${n.name} created (VLAN ${n.vlan} on ${n.physnet}).`),
  'allocation-form': (f) =>
    api('POST', '/v1/allocations', {
      network: f.network.value,
      workload: { kind: f.kind.value, name: f.workload.value.trim() },
      host: f.host.value.trim() || undefined,
    }).then((a) => `Allocated ${a.host}/${a.pf} vf ${a.vfIndex} (${a.pciAddress}), MAC ${a.mac}.`),
};

function wireForms() {
  for (const [id, action] of Object.entries(ACTIONS)) {
    const form = $(id);
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const result = form.querySelector('.result');
      result.className = 'result';
      result.textContent = 'Working…';
      try {
        result.textContent = await action(form.elements);
        result.classList.add('ok-text');
        await refresh();
      } catch (err) {
        result.textContent = errorText(err);
        result.classList.add('error');
      }
    });
  }
}

// ---- session ---------------------------------------------------------------

function signOut(message = '') {
  localStorage.removeItem(TOKEN_KEY);
  state.token = null;
  clearInterval(state.timer);
  state.events = [];
  state.eventSeq = 0;
  $('app').hidden = true;
  $('sign-out').hidden = true;
  $('meta').replaceChildren();
  $('demo-banner').hidden = true;
  $('refresh-status').textContent = '';
  $('login').hidden = false;
  $('login-error').textContent = message;
}

async function start() {
  try {
    const info = await api('GET', '/v1/info');
    state.role = info.role;
    state.info = info;
    renderBanner(info);
    $('tenant-form').hidden = info.role !== 'admin';
    $('meta').replaceChildren(pill(info.role, 'role'), h('span', null, `controller ${info.controllerHost}`), h('span', { class: 'muted' }, `v${info.version}`));
  } catch (err) {
    // A refused token already signed out; anything else keeps the token for another try.
    $('login').hidden = false;
    if (state.token) $('login-error').textContent = errorText(err);
    return;
  }
  $('login').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  await refresh().catch((err) => ($('refresh-status').textContent = errorText(err)));
  state.timer = setInterval(() => refresh().catch((err) => ($('refresh-status').textContent = errorText(err))), REFRESH_MS);
}

$('login-form').addEventListener('submit', (event) => {
  event.preventDefault();
  state.token = event.target.elements.token.value.trim();
  localStorage.setItem(TOKEN_KEY, state.token);
  $('login-error').textContent = '';
  void start();
});
$('sign-out').addEventListener('click', () => signOut());
$('show-released').addEventListener('change', () => state.data.allocations && render());
wireForms();
if (state.token) void start();
else signOut();
