// The order page: a live status timeline and a map with the restaurant,
// the destination and the courier moving, pushed by the gateway over
// server-sent events (`GET /api/v1/orders/{id}/stream`).

import { API, get, post } from '../api.js';
import { act, clock, h, label, money, mount, problemBlock, showProblem } from '../dom.js';
import { FeastMap } from '../map.js';
import { follow } from '../sse.js';

const HAPPY = ['PENDING', 'PAYMENT_PENDING', 'AWAITING_RESTAURANT', 'CONFIRMED', 'COURIER_ASSIGNED', 'PICKED_UP', 'DELIVERED'];
const FINAL = ['DELIVERED', 'REJECTED', 'CANCELLED'];
const CANCELLABLE = ['PENDING', 'PAYMENT_PENDING', 'AWAITING_RESTAURANT', 'CONFIRMED', 'COURIER_ASSIGNED'];

export async function render(main, [id]) {
  const path = `/orders/${encodeURIComponent(id)}`;
  let order = await get(path);
  let restaurant = null;
  try {
    restaurant = await get(`/restaurants/${encodeURIComponent(order.restaurant_id)}`);
  } catch {
    // The page works without the restaurant's name (restaurants may be down).
  }

  const status = h('p', { class: 'status', id: 'order-status', 'aria-live': 'polite' });
  const live = h('span', { class: 'live', id: 'live-state' }, 'connecting');
  const timeline = h('ol', { class: 'timeline', id: 'timeline' });
  const facts = h('dl', { class: 'facts' });
  const notice = h('div', { id: 'order-notice' });
  const cancel = h('button', { type: 'button', class: 'danger', id: 'cancel-order' }, 'Cancel order');
  const map = new FeastMap({ label: 'Where your order is' });

  cancel.addEventListener('click', (e) => act(e.currentTarget, async () => {
    update(await post(`${path}/cancel`, {}));
  }));

  function update(next) {
    order = next;
    main.dataset.status = order.status;
    mount(status, 'Status: ', h('strong', { class: `badge s-${order.status}` }, label(order.status)));
    const reached = new Map(order.timeline.map((t) => [t.status, t.at]));
    const steps = FINAL.includes(order.status) && !HAPPY.includes(order.status)
      ? [...order.timeline.map((t) => t.status)]
      : HAPPY;
    mount(timeline, [...new Set(steps)].map((s) => h('li', {
      class: reached.has(s) ? (s === order.status ? 'done current' : 'done') : 'todo',
      'data-step': s,
    }, h('span', { class: 'step' }, label(s)), h('time', {}, clock(reached.get(s))))));

    const d = order.delivery;
    mount(facts,
      h('dt', {}, 'Restaurant'), h('dd', {}, restaurant ? restaurant.name : order.restaurant_id),
      h('dt', {}, 'Items'), h('dd', {}, order.items.map((i) => `${i.quantity} × ${i.name}`).join(', ')),
      h('dt', {}, 'Total'), h('dd', {}, `${money(order.total_cents)} (delivery ${money(order.delivery_fee_cents)})`),
      h('dt', {}, 'Payment'), h('dd', { id: 'payment-status' }, order.payment?.status || '—'),
      h('dt', {}, 'Courier'), h('dd', { id: 'courier-status' }, d ? `${label(d.status)}${d.eta ? `, ETA ${clock(d.eta)}` : ''}` : FINAL.includes(order.status) ? '—' : 'not assigned yet'),
      h('dt', {}, 'Deliver to'), h('dd', {}, `${order.delivery_address.line1}, ${order.delivery_address.city}`));

    const degraded = order.degraded || [];
    mount(notice,
      order.rejection_reason ? h('p', { class: 'warn', role: 'status' }, `Rejected: ${order.rejection_reason}`) : null,
      degraded.length
        ? h('p', { class: 'warn', role: 'status', id: 'degraded' },
          `The ${degraded.join(', ')} service is not answering right now: the courier's whereabouts are unknown for the moment. Your order goes on.`)
        : null);
    cancel.hidden = !CANCELLABLE.includes(order.status);

    const pickup = d?.pickup || order.pickup || restaurant?.location;
    map.set('restaurant', pickup, { kind: 'restaurant', label: restaurant?.name || 'Restaurant' });
    map.set('home', d?.dropoff || order.delivery_address.location, { kind: 'home', label: 'You' });
    const courierAt = d && d.status !== 'DELIVERED' && d.status !== 'CANCELLED' ? d.courier_location : null;
    map.set('courier', courierAt, { kind: 'courier', label: 'Courier' });
    const ended = order.status === 'REJECTED' || order.status === 'CANCELLED';
    map.route(ended ? [] : order.status === 'PICKED_UP' ? ['courier', 'home'] : ['courier', 'restaurant', 'home']);
  }

  update(order);
  mount(main,
    h('p', {}, h('a', { href: '#/orders' }, '← My orders')),
    h('h1', {}, 'Your order'),
    h('div', { class: 'order-head' }, status, live),
    notice,
    h('div', { class: 'grid2 wide-first' },
      h('section', { 'aria-label': 'Map' }, map.el),
      h('section', { 'aria-label': 'Progress' }, timeline, facts, cancel)));

  if (FINAL.includes(order.status)) {
    live.textContent = 'final';
    return null;
  }
  const stream = follow(`${API}${path}/stream`, {
    onEvent: (name, data) => {
      if (name !== 'order' || typeof data !== 'object') return undefined;
      update(data);
      return FINAL.includes(data.status) ? 'final' : undefined;
    },
    onState: (state) => {
      live.textContent = state === 'ended' && FINAL.includes(order.status) ? 'final' : state;
      live.dataset.state = state;
    },
    onProblem: (p) => {
      showProblem(p);
      mount(notice, problemBlock(p));
    },
  });
  return () => stream.close();
}
