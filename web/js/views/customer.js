// The customer's views: browse and search restaurants, a menu with the
// cart and checkout (delivery address picked on the map), order history.

import { get, idempotencyKey, post, session } from '../api.js';
import { act, clock, field, h, label, money, mount, onSubmit } from '../dom.js';
import { FeastMap, placePicker } from '../map.js';

/** The documented test payment tokens (API.md). */
export const PAYMENT_METHODS = [
  ['pm_card_visa', 'Visa test card (succeeds)'],
  ['pm_card_chargeDeclined', 'Test card: declined'],
  ['pm_card_chargeDeclinedInsufficientFunds', 'Test card: insufficient funds'],
];

export async function restaurants(main) {
  const q = h('input', { type: 'search', name: 'q', placeholder: 'pizza, sushi, curry…' });
  const cuisine = h('input', { type: 'text', name: 'cuisine', placeholder: 'any' });
  const list = h('ul', { class: 'cards', id: 'restaurant-list', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'More restaurants');
  const map = new FeastMap({ label: 'Where the restaurants are' });
  let cursor = null;

  async function load(reset) {
    const params = new URLSearchParams({ limit: '12' });
    if (q.value.trim()) params.set('q', q.value.trim());
    if (cuisine.value.trim()) params.set('cuisine', cuisine.value.trim());
    if (!reset && cursor) params.set('cursor', cursor);
    const page = await get(`/restaurants?${params}`);
    if (reset) {
      list.replaceChildren();
      for (const key of [...map.markers.keys()]) map.remove(key);
    }
    for (const r of page.items) {
      map.set(r.id, r.location, { kind: 'restaurant', label: r.name });
      list.append(h('li', { class: 'card restaurant' },
        h('h3', {}, h('a', { href: `#/restaurants/${r.id}` }, r.name)),
        h('p', {}, r.cuisine, ' · ', r.address),
        h('p', { class: r.open ? 'ok' : 'muted' }, r.open ? 'Open' : 'Closed',
          r.auto_accept === false ? ' · accepts orders by hand' : '')));
    }
    if (reset && page.items.length === 0) list.append(h('li', { class: 'muted' }, 'No restaurant matches.'));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }

  more.addEventListener('click', (e) => act(e.currentTarget, () => load(false)));
  const form = h('form', { class: 'search', role: 'search', onsubmit: onSubmit(() => load(true)) }, field('Search', q), field('Cuisine', cuisine), h('button', { type: 'submit' }, 'Search'));

  mount(main, h('h1', {}, 'Restaurants'), form,
    h('div', { class: 'grid2 wide-first' }, h('div', {}, list, more), h('section', { 'aria-label': 'Map of the restaurants' }, map.el)));
  await load(true);
}

const CART = 'feastfast.cart';

function loadCart(restaurantId) {
  try {
    const cart = JSON.parse(sessionStorage.getItem(CART));
    if (cart && cart.restaurant_id === restaurantId) return cart;
  } catch {
    // A damaged cart is an empty cart.
  }
  return { restaurant_id: restaurantId, lines: {} };
}

export async function restaurant(main, [id], { go }) {
  const r = await get(`/restaurants/${encodeURIComponent(id)}`);
  const cart = loadCart(r.id);
  const saveCart = () => sessionStorage.setItem(CART, JSON.stringify(cart));
  const signedInCustomer = session()?.user?.role === 'customer';

  const cartBox = h('section', { class: 'card cart', 'aria-labelledby': 'cart-title', id: 'cart' });
  const menu = h('ul', { class: 'menu' });
  for (const item of r.menu) {
    const soldOut = !item.available || item.stock === 0;
    menu.append(h('li', { class: 'menu-item', 'data-item': item.id },
      h('div', {},
        h('strong', {}, item.name), ' ', h('span', { class: 'price' }, money(item.price_cents)),
        h('p', { class: 'muted' }, item.description),
        soldOut ? h('p', { class: 'warn' }, 'Sold out') : item.stock != null ? h('p', { class: 'muted small' }, `${item.stock} left`) : null),
      h('button', {
        type: 'button',
        disabled: soldOut,
        'aria-label': `Add ${item.name} to the cart`,
        onclick: () => {
          cart.lines[item.id] = (cart.lines[item.id] || 0) + 1;
          saveCart();
          drawCart();
        },
      }, 'Add')));
  }

  // Checkout.
  const line1 = h('input', { name: 'line1', required: true, autocomplete: 'street-address', value: 'Alexanderplatz 1' });
  const city = h('input', { name: 'city', required: true, autocomplete: 'address-level2', value: 'Berlin' });
  const method = h('select', { name: 'payment_method' }, PAYMENT_METHODS.map(([v, t]) => h('option', { value: v }, t)));
  const place = placePicker({
    label: 'Delivery map: click to choose where the food goes',
    at: { lat: 52.5219, lng: 13.4132 },
    kind: 'home',
    markerLabel: 'Deliver here',
  });
  place.map.set('restaurant', r.location, { kind: 'restaurant', label: r.name });

  // One idempotency key per distinct order body: a retry after a lost
  // answer places nothing twice; a changed cart is a new order.
  let attempt = { body: null, key: null };

  const checkout = h('form', {
    class: 'card checkout',
    id: 'checkout',
    onsubmit: onSubmit(async () => {
      const body = {
        restaurant_id: r.id,
        items: Object.entries(cart.lines).map(([menu_item_id, quantity]) => ({ menu_item_id, quantity })),
        delivery_address: {
          line1: line1.value.trim(),
          city: city.value.trim(),
          location: place.location(),
        },
        payment_method: method.value,
      };
      const text = JSON.stringify(body);
      if (attempt.body !== text) attempt = { body: text, key: idempotencyKey() };
      const order = await post('/orders', body, { headers: { 'idempotency-key': attempt.key } });
      cart.lines = {};
      saveCart();
      go(`#/orders/${order.id}`);
    }),
  },
  h('h2', {}, 'Checkout'),
  h('p', { class: 'muted small' }, 'Click the map to choose the delivery point, or type its coordinates.'),
  place.map.el,
  h('div', { class: 'row' }, field('Street', line1), field('City', city)),
  h('div', { class: 'row' }, field('Latitude', place.lat), field('Longitude', place.lng)),
  field('Payment method', method),
  signedInCustomer
    ? h('button', { type: 'submit', id: 'place-order' }, 'Place order')
    : h('p', {}, h('a', { href: '#/signin' }, 'Sign in as a customer'), ' to order.'));

  function drawCart() {
    const lines = Object.entries(cart.lines).filter(([, n]) => n > 0);
    const byId = Object.fromEntries(r.menu.map((i) => [i.id, i]));
    const total = lines.reduce((sum, [itemId, n]) => sum + (byId[itemId]?.price_cents || 0) * n, 0);
    mount(cartBox,
      h('h2', { id: 'cart-title' }, 'Your cart'),
      lines.length === 0
        ? h('p', { class: 'muted' }, 'Empty: add something from the menu.')
        : h('ul', {}, lines.map(([itemId, n]) => h('li', { class: 'cart-line' },
          h('span', {}, `${n} × ${byId[itemId]?.name || itemId}`),
          h('span', {},
            h('button', { type: 'button', class: 'small secondary', 'aria-label': `One less ${byId[itemId]?.name}`, onclick: () => { cart.lines[itemId] -= 1; if (cart.lines[itemId] <= 0) delete cart.lines[itemId]; saveCart(); drawCart(); } }, '−'),
            ' ',
            h('button', { type: 'button', class: 'small secondary', 'aria-label': `One more ${byId[itemId]?.name}`, onclick: () => { cart.lines[itemId] += 1; saveCart(); drawCart(); } }, '+'))))),
      h('p', {}, h('strong', {}, 'Subtotal: '), h('span', { id: 'cart-total' }, money(total)), h('span', { class: 'muted small' }, ' (plus delivery, quoted by the restaurant)')));
    checkout.hidden = lines.length === 0;
  }
  drawCart();

  mount(main,
    h('p', {}, h('a', { href: '#/restaurants' }, '← All restaurants')),
    h('h1', {}, r.name),
    h('p', { class: 'muted' }, r.cuisine, ' · ', r.address, r.open ? '' : ' · closed'),
    // The gateway's last copy while the restaurants service is away.
    r.stale
      ? h('p', { class: 'warn', role: 'status', id: 'stale' },
        'The restaurants service is not answering right now: this is the menu as last seen. Stock and prices are checked again when you order.')
      : null,
    h('div', { class: 'grid2 wide-first' }, h('section', { 'aria-label': 'Menu' }, menu), h('div', {}, cartBox, checkout)));
}

export async function history(main) {
  const list = h('ul', { class: 'cards', id: 'order-list' });
  const more = h('button', { type: 'button', class: 'secondary', hidden: true }, 'Older orders');
  let cursor = null;
  async function load() {
    const params = new URLSearchParams({ limit: '20' });
    if (cursor) params.set('cursor', cursor);
    const page = await get(`/orders?${params}`);
    for (const o of page.items) {
      list.append(h('li', { class: 'card order-row' },
        h('a', { href: `#/orders/${o.id}` }, `Order of ${new Date(o.created_at).toLocaleString()}`),
        h('span', { class: `badge s-${o.status}` }, label(o.status)),
        h('span', {}, money(o.total_cents)),
        h('span', { class: 'muted small' }, `updated ${clock(o.updated_at)}`)));
    }
    if (!list.children.length) list.append(h('li', { class: 'muted' }, 'No orders yet. ', h('a', { href: '#/restaurants' }, 'Find something to eat.')));
    cursor = page.next_cursor;
    more.hidden = !cursor;
  }
  more.addEventListener('click', (e) => act(e.currentTarget, load));
  mount(main, h('h1', {}, 'My orders'), list, more);
  await load();
}
