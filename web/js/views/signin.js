// Sign in, register, and (in a local `feastfast up` run only) one-click
// demo logins for every role.

import { post, signIn } from '../api.js';
import { act, field, h, mount, onSubmit } from '../dom.js';

const HOME = { customer: '#/restaurants', restaurant_owner: '#/owner', courier: '#/courier', admin: '#/ops' };

const DEMO = [
  ['customer@feastfast.test', 'Customer'],
  ['owner@feastfast.test', 'Restaurant owner'],
  ['courier@feastfast.test', 'Courier'],
  ['courier2@feastfast.test', 'Courier 2'],
  ['courier3@feastfast.test', 'Courier 3'],
];
const DEMO_PASSWORD = 'feastfast';

export async function render(main, _params, { info, go }) {
  const enter = async (email, password) => {
    const me = await signIn(email, password);
    go(HOME[me.role] || '#/restaurants');
  };

  const email = h('input', { type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const login = h('form', {
    class: 'card',
    id: 'login-form',
    onsubmit: onSubmit(() => enter(email.value.trim(), password.value)),
  },
  h('h2', {}, 'Sign in'),
  field('E-mail', email),
  field('Password', password),
  h('button', { type: 'submit' }, 'Sign in'));

  const rEmail = h('input', { type: 'email', name: 'email', autocomplete: 'email', required: true });
  const rName = h('input', { type: 'text', name: 'name', autocomplete: 'name', required: true });
  const rPassword = h('input', { type: 'password', name: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const rRole = h('select', { name: 'role' },
    h('option', { value: 'customer' }, 'Customer'),
    h('option', { value: 'restaurant_owner' }, 'Restaurant owner'),
    h('option', { value: 'courier' }, 'Courier'));
  const register = h('form', {
    class: 'card',
    id: 'register-form',
    // The browser's own checks are off so the API's 422 (which names each
    // field) is what the user sees, the same rules for every client.
    novalidate: true,
    onsubmit: onSubmit(async () => {
      await post('/auth/register', {
        email: rEmail.value.trim(), password: rPassword.value, name: rName.value.trim(), role: rRole.value,
      });
      await enter(rEmail.value.trim(), rPassword.value);
    }),
  },
  h('h2', {}, 'New here? Register'),
  field('Name', rName),
  field('E-mail', rEmail),
  field('Password (at least 8 characters)', rPassword),
  field('I am a', rRole),
  h('button', { type: 'submit' }, 'Register and sign in'));

  const demo = info.local_run
    ? h('section', { class: 'card demo', 'aria-labelledby': 'demo-title' },
      h('h2', { id: 'demo-title' }, 'Demo logins'),
      h('p', { class: 'muted' }, 'This is a local run: play any role with one click (password ', h('code', {}, DEMO_PASSWORD), ').'),
      h('div', { class: 'buttons' }, DEMO.map(([address, text]) =>
        h('button', {
          type: 'button',
          'data-demo': address,
          onclick: (e) => act(e.currentTarget, () => enter(address, DEMO_PASSWORD)),
        }, text))),
      h('p', { class: 'muted small' }, 'Couriers 1 to 3 are ridden by the simulator when it runs; ops needs no login: ', h('a', { href: '#/ops' }, 'open the ops view'), '.'))
    : null;

  mount(main, h('h1', {}, 'Welcome to FeastFast'), h('div', { class: 'grid2' }, demo, login, register));
}
