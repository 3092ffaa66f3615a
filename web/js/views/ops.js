// The ops view: a live service map (services as nodes, calls and event
// flows as edges) with each node's health, request rate, latency and
// outbox lag, kill / stop / start buttons in a local run, and live counts
// of orders by status. Everything comes from GET /api/v1/ops/overview,
// read every second; rates are the difference of two readings.

import { get, post } from '../api.js';
import { act, h, label, mount } from '../dom.js';

const POLL_MS = 1000;
const svg = (tag, attrs = {}, ...children) => h(tag, { ...attrs, svg: true }, ...children);

// Where each node sits on the map (viewBox 800 × 430).
const LAYOUT = {
  gateway: [400, 55],
  users: [95, 200],
  restaurants: [275, 200],
  orders: [500, 200],
  delivery: [700, 200],
  payments: [500, 360],
};
/**
 * Where an instance sits: a service at its place, its replicas
 * (`orders-2`, `orders-3`, …) stacked behind it like a deck of cards.
 */
function place(name) {
  if (LAYOUT[name]) return LAYOUT[name];
  const m = name.match(/^(.+)-(\d+)$/);
  if (!m || !LAYOUT[m[1]]) return null;
  const [x, y] = LAYOUT[m[1]];
  const k = Number(m[2]) - 1;
  return [x + 9 * k, y - 9 * k];
}

const NODE_W = 124;
const NODE_H = 64;
const ORDER_STATUSES = ['PENDING', 'PAYMENT_PENDING', 'AWAITING_RESTAURANT', 'CONFIRMED', 'COURIER_ASSIGNED', 'PICKED_UP', 'DELIVERED', 'REJECTED', 'CANCEL_PENDING', 'CANCELLED'];

export async function render(main) {
  const map = svg('svg', { class: 'service-map', id: 'service-map', viewBox: '0 0 800 430', role: 'img', 'aria-label': 'Service map' });
  const table = h('table', { class: 'services', id: 'services-table' });
  const counts = h('ul', { class: 'counts', id: 'order-counts', 'aria-live': 'polite' });
  const updated = h('p', { class: 'muted small', id: 'ops-updated' });
  let previous = null;
  let stopped = false;
  let timer = null;
  let overview = null;
  // The process buttons of each service, kept across redraws (see drawTable).
  const controls = new Map();

  async function poll() {
    try {
      const now = performance.now();
      overview = await get('/ops/overview');
      const rates = rateOf(previous, overview, now);
      previous = { t: now, overview };
      draw(rates);
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      updated.textContent = `Cannot read the overview: ${e.title}${e.detail ? ` — ${e.detail}` : ''}`;
    }
    // One loop only, however many polls ran at once (a button also polls).
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  async function control(name, action) {
    await post(`/ops/services/${name}/${action}`, undefined);
    clearTimeout(timer);
    await poll();
  }

  function draw(rates) {
    drawMap(map, overview, rates);
    drawTable(table, overview, rates, control, controls);
    mount(counts, overview.orders_by_status
      ? ORDER_STATUSES.map((s) => h('li', { class: `count s-${s}`, 'data-status': s },
        h('span', { class: 'n' }, String(overview.orders_by_status[s] ?? 0)), h('span', {}, label(s))))
      : h('li', { class: 'warn' }, 'Orders is not answering: no counts right now.'));
  }

  mount(main,
    h('h1', {}, 'Operations'),
    h('p', { class: 'muted' }, 'The live system: every service is its own process with its own database. ',
      'Solid lines are HTTP calls, dashed ones events. Kill a service and watch the rest carry on.'),
    h('div', { class: 'grid2 wide-first' },
      h('section', { 'aria-label': 'Service map' }, map, legend()),
      h('section', { 'aria-labelledby': 'counts-title' }, h('h2', { id: 'counts-title' }, 'Orders by status'), counts)),
    h('h2', {}, 'Services'), h('div', { class: 'scroll' }, table), updated);
  await poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

function legend() {
  return h('p', { class: 'legend small' },
    h('span', { class: 'dot up' }), ' up ', h('span', { class: 'dot degraded' }), ' degraded ', h('span', { class: 'dot down' }), ' down');
}

/** Per service: requests/s, 5xx/s and mean latency (ms) since the last reading. */
function rateOf(previous, overview, now) {
  const rates = {};
  for (const s of overview.services) {
    const before = previous?.overview.services.find((p) => p.name === s.name)?.metrics;
    const m = s.metrics;
    if (!m || !before || m.requests_total < before.requests_total) {
      rates[s.name] = null;
      continue;
    }
    const dt = (now - previous.t) / 1000;
    const dn = m.latency_count - before.latency_count;
    rates[s.name] = {
      rps: (m.requests_total - before.requests_total) / dt,
      eps: (m.server_errors_total - before.server_errors_total) / dt,
      ms: dn > 0 ? ((m.latency_seconds_sum - before.latency_seconds_sum) / dn) * 1000 : null,
    };
  }
  return rates;
}

// The ops API's process control: kill is SIGKILL, stop is graceful,
// restart starts a new process before draining the old (no downtime).
const CONTROL = { kill: 'stop?mode=kill', stop: 'stop?mode=graceful', start: 'start', restart: 'restart' };

const fmt = (v, digits = 1) => (v === null || v === undefined ? '—' : Number(v).toFixed(digits));

function drawMap(map, overview, rates) {
  const status = Object.fromEntries(overview.services.map((s) => [s.name, s.status]));
  const defs = svg('defs', {},
    svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: '9', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse' },
      svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow-head' })));
  const edges = overview.edges.filter((e) => LAYOUT[e.from] && LAYOUT[e.to]).map((e) => {
    const [x1, y1] = LAYOUT[e.from];
    const [x2, y2] = LAYOUT[e.to];
    // Events bend one way, calls go straight, so both show between a pair.
    const bend = e.kind === 'event' ? 38 : 0;
    const mx = (x1 + x2) / 2;
    const my = (y1 + y2) / 2;
    const len = Math.hypot(x2 - x1, y2 - y1) || 1;
    const cx = mx + (-(y2 - y1) / len) * bend;
    const cy = my + ((x2 - x1) / len) * bend;
    // Start and end on the edge of the nodes' boxes (the line from the
    // curve's control point to the node's centre, cut where it enters).
    const onBox = (px, py, qx, qy, gap) => {
      const dx = qx - px;
      const dy = qy - py;
      const l = Math.hypot(dx, dy) || 1;
      const inside = Math.min(NODE_W / 2 / (Math.abs(dx) / l || 1e-9), NODE_H / 2 / (Math.abs(dy) / l || 1e-9));
      return [qx - (dx / l) * (inside + gap), qy - (dy / l) * (inside + gap)];
    };
    const [sx, sy] = onBox(cx, cy, x1, y1, 2);
    const [ex, ey] = onBox(cx, cy, x2, y2, 4);
    const down = status[e.from] === 'down' || status[e.to] === 'down';
    return svg('path', {
      class: `edge ${e.kind}${down ? ' broken' : ''}`,
      d: `M ${sx} ${sy} Q ${cx} ${cy} ${ex} ${ey}`,
      'marker-end': 'url(#arrow)',
      'data-edge': `${e.from}-${e.to}-${e.kind}`,
    }, svg('title', {}, `${e.from} → ${e.to}: ${e.kind === 'call' ? 'calls' : 'events'} (${e.label})`));
  });
  // Replicas first, so each service's own node is drawn on top of them.
  const instances = overview.services.filter((s) => place(s.name))
    .sort((a, b) => Number(Boolean(LAYOUT[a.name])) - Number(Boolean(LAYOUT[b.name])));
  const nodes = instances.map((s) => {
    const [x, y] = place(s.name);
    const r = rates[s.name];
    return svg('g', { class: `node ${s.status}`, 'data-service': s.name, 'data-status': s.status, transform: `translate(${x} ${y})` },
      svg('rect', { x: -NODE_W / 2, y: -NODE_H / 2, width: NODE_W, height: NODE_H, rx: 10 }),
      svg('text', { class: 'node-name', y: -10 }, s.name),
      svg('text', { class: 'node-figure', y: 8 }, s.status === 'down' ? 'DOWN' : `${fmt(r?.rps)} req/s`),
      svg('text', { class: 'node-figure', y: 23 }, s.status === 'down' ? (s.detail || '') : `${r?.ms == null ? '—' : fmt(r.ms)} ms`));
  });
  mount(map, defs, edges, nodes);
}

const BREAKER = { 0: 'closed', 1: 'half-open', 2: 'open' };

function drawTable(table, overview, rates, control, controls) {
  const breakers = overview.services.some((s) => s.metrics?.breakers?.some((b) => b.name === 'client_breaker_state'));
  const head = ['Service', 'Health', 'Version', 'Probe (ms)', 'Req/s', '5xx/s', 'Latency (ms)', 'Outbox (unpublished / oldest s)', 'Consumer lag', 'Dead letters'];
  if (breakers) head.push('Breakers');
  if (overview.local_run) head.push('Process');
  const kv = (o) => (o && Object.keys(o).length ? Object.entries(o).map(([k, v]) => `${k}: ${v}`).join(', ') : '—');
  mount(table,
    h('thead', {}, h('tr', {}, head.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, overview.services.map((s) => {
      const m = s.metrics;
      const r = rates[s.name];
      const cells = [
        h('th', { scope: 'row' }, s.name),
        h('td', {}, h('span', { class: `badge h-${s.status}`, 'data-health': s.name }, s.status), s.detail ? h('span', { class: 'muted small' }, ` ${s.detail}`) : null),
        h('td', {}, s.version || '—'),
        h('td', {}, fmt(s.latency_ms)),
        h('td', {}, fmt(r?.rps)),
        h('td', {}, fmt(r?.eps)),
        h('td', {}, r?.ms == null ? '—' : fmt(r.ms)),
        h('td', {}, m && m.outbox_unpublished != null ? `${m.outbox_unpublished} / ${fmt(m.outbox_oldest_seconds)}` : '—'),
        h('td', {}, kv(m?.consumer_lag)),
        h('td', {}, kv(m?.dead_letters)),
      ];
      if (breakers) {
        // The platform's breakers: client_breaker_state{upstream} 0 closed,
        // 1 half-open, 2 open (the opening counter is left to /metrics).
        const states = (m?.breakers || []).filter((b) => b.name === 'client_breaker_state');
        cells.push(h('td', {}, states.length
          ? states.map((b) => {
            const state = BREAKER[b.value] || String(b.value);
            return h('span', { class: `badge b-${state}`, 'data-breaker': `${s.name}:${b.labels.upstream}` }, `${b.labels.upstream} ${state}`);
          })
          : '—'));
      }
      if (overview.local_run) {
        const button = (action, text, cls) => h('button', {
          type: 'button',
          class: `small ${cls}`,
          'data-control': `${action}-${s.name}`,
          'aria-label': `${text} ${s.name}`,
          onclick: (e) => act(e.currentTarget, () => control(s.name, CONTROL[action])),
        }, text);
        // The same buttons while the service's state holds: the table is
        // redrawn every second, and a click whose press and release fall
        // on either side of a redraw would otherwise reach no button.
        const key = `${s.name}:${s.status === 'down' ? 'down' : 'up'}`;
        if (!controls.has(key)) {
          controls.set(key, h('div', { class: 'buttons nowrap' }, s.name === 'gateway'
            ? h('span', { class: 'muted small' }, 'serves this page')
            : s.status === 'down'
              ? button('start', 'Start', '')
              : [button('kill', 'Kill', 'danger'), button('stop', 'Stop', 'secondary'), button('restart', 'Restart', 'secondary')]));
        }
        cells.push(h('td', {}, controls.get(key)));
      }
      return h('tr', { 'data-service': s.name }, cells);
    })));
}
