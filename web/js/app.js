// The single-page app: hash routes (`#/orders/{id}`), so a deep link needs
// no server fallback; one view at a time, each returning a cleanup that
// stops its streams and timers when the user leaves it.

import { get, session, setSession } from './api.js';
import { h, mount, showProblem } from './dom.js';
import * as signin from './views/signin.js';
import * as customer from './views/customer.js';
import * as order from './views/order.js';
import * as owner from './views/owner.js';
import * as courier from './views/courier.js';
import * as ops from './views/ops.js';

const ROUTES = [
  [/^#\/signin$/, signin.render],
  [/^#\/restaurants$/, customer.restaurants],
  [/^#\/restaurants\/([^/]+)$/, customer.restaurant],
  [/^#\/orders$/, customer.history],
  [/^#\/orders\/([^/]+)$/, order.render],
  [/^#\/owner$/, owner.render],
  [/^#\/owner\/([^/]+)$/, owner.render],
  [/^#\/courier$/, courier.render],
  [/^#\/ops$/, ops.render],
];

const HOME = { customer: '#/restaurants', restaurant_owner: '#/owner', courier: '#/courier', admin: '#/ops' };

const NAV = {
  none: [['#/restaurants', 'Restaurants'], ['#/ops', 'Ops'], ['#/signin', 'Sign in']],
  customer: [['#/restaurants', 'Restaurants'], ['#/orders', 'My orders'], ['#/ops', 'Ops']],
  restaurant_owner: [['#/owner', 'My restaurants'], ['#/ops', 'Ops']],
  courier: [['#/courier', 'Deliveries'], ['#/ops', 'Ops']],
  admin: [['#/restaurants', 'Restaurants'], ['#/ops', 'Ops']],
};

let info = { local_run: false };
let cleanup = null;

function renderChrome() {
  const s = session();
  const role = s?.user?.role || 'none';
  const here = location.hash || '#/';
  mount(document.getElementById('nav'),
    h('ul', {}, NAV[role].map(([href, text]) =>
      h('li', {}, h('a', { href, 'aria-current': here.startsWith(href) ? 'page' : null }, text)))));
  mount(document.getElementById('who'),
    s?.user
      ? [h('span', { class: 'role' }, `${s.user.name} · ${s.user.role.replace('_', ' ')}`), ' ',
        h('button', { type: 'button', class: 'link', id: 'sign-out', onclick: signOut }, 'Sign out')]
      : null);
}

function signOut() {
  setSession(null);
  location.hash = '#/signin';
}

async function route() {
  if (cleanup) {
    try {
      cleanup();
    } catch {
      // A view's cleanup failing must not block the next view.
    }
    cleanup = null;
  }
  showProblem(null);
  const hash = location.hash || '#/';
  if (hash === '#/' || hash === '#') {
    const role = session()?.user?.role;
    location.replace(HOME[role] || '#/signin');
    return;
  }
  renderChrome();
  const main = document.getElementById('main');
  for (const [pattern, view] of ROUTES) {
    const m = hash.match(pattern);
    if (m) {
      mount(main);
      const token = {};
      route.current = token;
      try {
        const done = await view(main, m.slice(1).map(decodeURIComponent), { info, go });
        if (route.current === token) cleanup = done || null;
        else if (done) done();
      } catch (e) {
        showProblem(e);
      }
      return;
    }
  }
  mount(main, h('h1', {}, 'Not found'), h('p', {}, 'There is no page at ', h('code', {}, hash), '. ', h('a', { href: '#/' }, 'Go home')));
}

/** Navigates; the hashchange listener renders. */
export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

window.addEventListener('hashchange', route);
window.addEventListener('feastfast:signed-out', () => {
  renderChrome();
  location.hash = '#/signin';
});

(async () => {
  try {
    info = await get('/api/v1');
  } catch {
    // Without the index the UI still works; it just offers no demo logins.
  }
  document.body.dataset.localRun = String(Boolean(info.local_run));
  route();
})();
