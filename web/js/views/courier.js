// The courier's view: go online or offline at a place on the map, the
// current assignment (restaurant and customer on the map), pick up and
// deliver. Assignments are polled every second.

import { get, post, put } from '../api.js';
import { act, clock, field, h, label, mount, onSubmit, showProblem } from '../dom.js';
import { placePicker } from '../map.js';

const POLL_MS = 1000;
const STATE = 'feastfast.courier';

export async function render(main) {
  // The API has no "read my courier state", only the update: this tab
  // remembers what it last set.
  const saved = JSON.parse(sessionStorage.getItem(STATE) || 'null') || { available: false, location: { lat: 52.5200, lng: 13.4050 } };
  let me = saved;
  const state = h('p', { id: 'courier-state', role: 'status' });
  const toggle = h('button', { type: 'button', id: 'toggle-online' });
  const assignment = h('div', { id: 'assignment', 'aria-live': 'polite' });
  const history = h('ul', { class: 'cards', id: 'delivery-history' });
  const place = placePicker({
    label: 'Your position and your delivery: click to set where you are',
    at: me.location,
    kind: 'courier',
    markerLabel: 'You',
  });
  const { map } = place;

  async function send(available) {
    const location = place.location();
    const answer = await put('/couriers/me', { available, location });
    me = { available: answer.available ?? available, location: answer.location || location };
    sessionStorage.setItem(STATE, JSON.stringify(me));
    drawState();
  }

  function drawState() {
    mount(state, me.available ? h('strong', { class: 'ok' }, 'Online: waiting for or riding a delivery') : h('strong', { class: 'muted' }, 'Offline'));
    toggle.textContent = me.available ? 'Go offline' : 'Go online here';
    map.set('courier', me.location, { kind: 'courier', label: 'You' });
  }
  toggle.addEventListener('click', (e) => act(e.currentTarget, () => send(!me.available)));

  const move = h('form', { class: 'row', onsubmit: onSubmit(() => send(me.available)) },
    field('Latitude', place.lat), field('Longitude', place.lng), h('button', { type: 'submit', class: 'secondary' }, 'Update my position'));

  let timer = null;
  let stopped = false;
  let lastKey = '';
  async function poll() {
    try {
      const list = (await get('/couriers/me/deliveries')).items;
      const key = JSON.stringify(list.map((d) => [d.id, d.status]));
      if (key !== lastKey) {
        lastKey = key;
        draw(list);
      }
    } catch (e) {
      showProblem(e);
    }
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }

  function draw(list) {
    const active = list.find((d) => d.status === 'ASSIGNED' || d.status === 'PICKED_UP');
    if (!active) {
      mount(assignment, h('p', { class: 'muted' }, me.available ? 'No delivery yet: the dispatcher gives you the nearest order.' : 'Go online to get deliveries.'));
      map.remove('restaurant');
      map.remove('home');
      map.route([]);
    } else {
      const step = (action, text) => h('button', {
        type: 'button',
        id: `${action}-delivery`,
        onclick: (e) => act(e.currentTarget, async () => {
          await post(`/deliveries/${active.id}/${action}`, {});
          lastKey = '';
          await pollOnce();
        }),
      }, text);
      mount(assignment, h('div', { class: 'card', 'data-delivery': active.id, 'data-status': active.status },
        h('p', {}, 'Delivery for order …', active.order_id.slice(-6), ' ', h('span', { class: `badge s-${active.status}` }, label(active.status))),
        active.eta ? h('p', { class: 'muted small' }, `ETA ${clock(active.eta)}`) : null,
        active.status === 'ASSIGNED' ? step('pickup', 'Picked up the food') : step('deliver', 'Delivered to the door')));
      map.set('restaurant', active.pickup, { kind: 'restaurant', label: 'Pick up' });
      map.set('home', active.dropoff, { kind: 'home', label: 'Drop off' });
      map.route(active.status === 'ASSIGNED' ? ['courier', 'restaurant', 'home'] : ['courier', 'home']);
    }
    mount(history, list.filter((d) => d !== active).slice(0, 10).map((d) =>
      h('li', { class: 'card' }, `Order …${d.order_id.slice(-6)} `, h('span', { class: `badge s-${d.status}` }, label(d.status)), ' ', h('span', { class: 'muted small' }, clock(d.updated_at)))));
  }

  async function pollOnce() {
    const list = (await get('/couriers/me/deliveries')).items;
    lastKey = JSON.stringify(list.map((d) => [d.id, d.status]));
    draw(list);
  }

  drawState();
  mount(main, h('h1', {}, 'Deliveries'),
    h('div', { class: 'grid2 wide-first' },
      h('section', { 'aria-label': 'Map' }, map.el, move),
      h('section', { 'aria-label': 'My state' }, state, toggle, h('h2', {}, 'Current delivery'), assignment, h('h2', {}, 'Earlier'), history)));
  await poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
