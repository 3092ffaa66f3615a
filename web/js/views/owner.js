// The restaurant owner's view: their restaurants, menu editing (price,
// availability, stock), and the kitchen's tickets with the acceptance
// countdown and accept / reject / ready. Tickets are polled every second
// (owners have no event stream in the public API).

import { get, patch, post } from '../api.js';
import { act, clock, field, h, label, money, mount, onSubmit, showProblem } from '../dom.js';
import { placePicker } from '../map.js';

const POLL_MS = 1000;
const ACTIVE = ['PENDING', 'ACCEPTED', 'READY'];

export async function render(main, [id], { go }) {
  const mine = (await get('/restaurants/mine')).items;
  if (!id && mine.length) {
    go(`#/owner/${mine[0].id}`);
    return null;
  }
  const picker = h('nav', { class: 'tabs', 'aria-label': 'My restaurants' },
    mine.map((r) => h('a', { href: `#/owner/${r.id}`, 'aria-current': r.id === id ? 'page' : null }, r.name)),
    h('a', { href: '#/owner', 'aria-current': !id ? 'page' : null }, '+ New restaurant'));

  if (!id) {
    mount(main, h('h1', {}, 'My restaurants'), picker, newRestaurant(go));
    return null;
  }
  const r = await get(`/restaurants/${encodeURIComponent(id)}`);
  const tickets = h('ul', { class: 'tickets', id: 'tickets', 'aria-live': 'polite' });
  const menu = h('table', { class: 'menu-editor', id: 'menu-editor' });
  drawMenu(menu, r);

  let timer = null;
  let stopped = false;
  let last = [];
  async function poll() {
    try {
      const list = (await get(`/restaurants/${encodeURIComponent(id)}/tickets`)).items;
      last = list;
      drawTickets();
    } catch (e) {
      showProblem(e);
    }
    // One loop only, however many polls ran at once (a button also polls).
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(poll, POLL_MS);
  }
  // The countdown ticks between polls.
  const ticker = setInterval(() => drawCountdowns(tickets), 250);

  function drawTickets() {
    const active = last.filter((t) => ACTIVE.includes(t.status));
    const closed = last.filter((t) => !ACTIVE.includes(t.status)).slice(0, 10);
    const focused = document.activeElement?.dataset?.action;
    mount(tickets, active.length === 0 ? h('li', { class: 'muted' }, 'No open tickets.') : null,
      [...active, ...closed].map((t) => ticket(r, t, () => poll())));
    if (focused) tickets.querySelector(`[data-action="${focused}"]`)?.focus();
    drawCountdowns(tickets);
  }

  mount(main,
    h('h1', {}, 'My restaurants'), picker,
    h('h2', {}, r.name, ' ', h('span', { class: 'muted small' }, r.auto_accept ? 'accepts orders automatically' : 'accepts orders by hand')),
    h('div', { class: 'grid2' },
      h('section', { 'aria-labelledby': 'tickets-title' }, h('h3', { id: 'tickets-title' }, 'Kitchen tickets'), tickets),
      h('section', { 'aria-labelledby': 'menu-title' }, h('h3', { id: 'menu-title' }, 'Menu'), h('div', { class: 'scroll' }, menu), newItem(r, go))));
  await poll();
  return () => {
    stopped = true;
    clearTimeout(timer);
    clearInterval(ticker);
  };
}

function ticket(r, t, refresh) {
  const actionButton = (action, text, cls = '') => h('button', {
    type: 'button',
    class: cls,
    'data-action': `${action}-${t.order_id}`,
    onclick: (e) => act(e.currentTarget, async () => {
      await post(`/restaurants/${r.id}/tickets/${t.order_id}/${action}`, action === 'reject' ? { reason: 'The kitchen cannot make it' } : {});
      await refresh();
    }),
  }, text);
  return h('li', { class: `card ticket t-${t.status}`, 'data-order': t.order_id, 'data-status': t.status },
    h('div', { class: 'ticket-head' },
      h('strong', {}, `Order …${t.order_id.slice(-6)}`),
      h('span', { class: `badge s-${t.status}` }, label(t.status)),
      t.status === 'PENDING' ? h('span', { class: 'countdown', 'data-until': t.accept_by }) : h('span', { class: 'muted small' }, clock(t.updated_at))),
    h('ul', {}, t.items.map((i) => h('li', {}, `${i.quantity} × ${i.name}`))),
    t.rejection_reason ? h('p', { class: 'muted small' }, t.rejection_reason) : null,
    h('div', { class: 'buttons' },
      t.status === 'PENDING' ? [actionButton('accept', 'Accept'), actionButton('reject', 'Reject', 'danger')] : null,
      t.status === 'ACCEPTED' ? actionButton('ready', 'Ready for pick-up') : null));
}

function drawCountdowns(root) {
  for (const el of root.querySelectorAll('.countdown')) {
    const left = Math.max(0, (Date.parse(el.dataset.until) - Date.now()) / 1000);
    el.textContent = left > 0 ? `${Math.ceil(left)} s to accept` : 'time is up';
    el.classList.toggle('urgent', left < 15);
  }
}

function drawMenu(table, r) {
  mount(table,
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Dish'), h('th', { scope: 'col' }, 'Price (€)'),
      h('th', { scope: 'col' }, 'Available'), h('th', { scope: 'col' }, 'Stock'), h('th', { scope: 'col' }, h('span', { class: 'sr-only' }, 'Save')))),
    h('tbody', {}, r.menu.map((item) => {
      const price = h('input', { type: 'number', min: '0', step: '0.01', value: (item.price_cents / 100).toFixed(2), 'aria-label': `Price of ${item.name} in euros` });
      const available = h('input', { type: 'checkbox', 'aria-label': `${item.name} is available` });
      available.checked = item.available;
      const stock = h('input', { type: 'number', min: '0', step: '1', value: item.stock ?? '', placeholder: 'no limit', 'aria-label': `Stock of ${item.name} (empty: no limit)` });
      const save = h('button', {
        type: 'button',
        class: 'small',
        'data-save': item.id,
        onclick: (e) => act(e.currentTarget, async () => {
          const updated = await patch(`/restaurants/${r.id}/menu/${item.id}`, {
            price_cents: Math.round(Number(price.value) * 100),
            available: available.checked,
            stock: stock.value === '' ? null : Number(stock.value),
          });
          Object.assign(item, updated);
          saved.textContent = `Saved ${clock(new Date().toISOString())}`;
        }),
      }, 'Save');
      const saved = h('span', { class: 'muted small', role: 'status' });
      return h('tr', { 'data-item': item.id }, h('th', { scope: 'row' }, item.name, h('br'), h('span', { class: 'muted small' }, money(item.price_cents))),
        h('td', {}, price), h('td', {}, available), h('td', {}, stock), h('td', {}, save, ' ', saved));
    })));
}

function newItem(r, go) {
  const name = h('input', { name: 'name', required: true });
  const description = h('input', { name: 'description' });
  const price = h('input', { name: 'price', type: 'number', min: '0', step: '0.01', required: true });
  const stock = h('input', { name: 'stock', type: 'number', min: '0', step: '1', placeholder: 'no limit' });
  return h('form', {
    class: 'card',
    novalidate: true,
    onsubmit: onSubmit(async () => {
      await post(`/restaurants/${r.id}/menu`, {
        name: name.value.trim(),
        description: description.value.trim(),
        price_cents: Math.round(Number(price.value) * 100),
        stock: stock.value === '' ? null : Number(stock.value),
      });
      go(`#/owner/${r.id}`);
    }),
  }, h('h3', {}, 'Add a dish'), field('Name', name), field('Description', description),
  h('div', { class: 'row' }, field('Price (€)', price), field('Stock', stock)), h('button', { type: 'submit' }, 'Add dish'));
}

function newRestaurant(go) {
  const name = h('input', { name: 'name', required: true });
  const cuisine = h('input', { name: 'cuisine', required: true });
  const address = h('input', { name: 'address', required: true });
  const manual = h('input', { type: 'checkbox', name: 'manual' });
  const place = placePicker({
    label: 'Click where the restaurant is',
    at: { lat: 52.52, lng: 13.41 },
    kind: 'restaurant',
    markerLabel: 'Here',
  });
  return h('form', {
    class: 'card',
    novalidate: true,
    onsubmit: onSubmit(async () => {
      const created = await post('/restaurants', {
        name: name.value.trim(),
        cuisine: cuisine.value.trim(),
        address: address.value.trim(),
        location: place.location(),
        auto_accept: !manual.checked,
      });
      go(`#/owner/${created.id}`);
    }),
  }, h('h2', {}, 'Open a restaurant'), field('Name', name), field('Cuisine', cuisine), field('Address', address),
  place.map.el, h('div', { class: 'row' }, field('Latitude', place.lat), field('Longitude', place.lng)),
  h('div', { class: 'field check' }, manual, h('label', { for: (manual.id = 'manual-accept') }, 'I accept orders by hand')),
  h('button', { type: 'submit' }, 'Open restaurant'));
}
