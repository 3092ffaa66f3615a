// A customer signs in with the demo button, searches, builds a cart, picks
// the delivery point on the map, pays with a test token and watches the
// order page reach DELIVERED with the simulators on: timeline and map
// update without a reload. Also: a problem+json shown clearly, and the
// phone-sized screen, and the keyboard.

import assert from 'node:assert/strict';
import { demoLogin, finish, launch, log, order, shot, watchOrder } from './lib.mjs';

const s = await launch();
const page = await s.person('customer');

await page.goto('/');
await page.locator('#login-form').waitFor();
await page.locator('[data-demo="customer@feastfast.test"]').waitFor();
await shot(page, 'signin');

// Every problem+json is shown: a registration the users service refuses
// (422) names each bad field.
s.allowConsoleError(/status of 422/);
const register = page.locator('#register-form');
await register.getByLabel('Name').fill('Short Password');
await register.getByLabel('E-mail').fill('not-an-email');
await register.getByLabel(/Password/).fill('short');
await register.getByRole('button').click();
const problem = page.locator('#problem');
await problem.locator('[data-status="422"]').waitFor();
const text = await problem.innerText();
assert.match(text, /password/i, text);
assert.match(text, /email/i, text);
await shot(page, 'signin-problem');

await demoLogin(page, 'customer@feastfast.test');
await page.locator('#restaurant-list a').first().waitFor();
await shot(page, 'restaurants');

const id = await order(page, 'sakura', {
  pick: { x: 0.62, y: 0.55 },
  beforePlace: () => shot(page, 'checkout'),
});
log(`placed order ${id}`);
await page.evaluate(() => {
  window.__sameDocument = true;
});
let onTheWay = false;
const { seen, positions } = await watchOrder(page, 'DELIVERED', 120_000, async (status) => {
  if (status === 'PICKED_UP' && !onTheWay) {
    onTheWay = true;
    await page.locator('[data-marker="courier"]').waitFor();
    await shot(page, 'order-on-the-way');
  }
});
assert.equal(await page.evaluate(() => window.__sameDocument), true, 'the order page reloaded');
assert.ok(seen.includes('PICKED_UP') || seen.includes('COURIER_ASSIGNED'), `statuses seen: ${seen}`);
assert.ok(positions.size >= 2, `the courier did not move on the map: ${[...positions]}`);
const done = await page.locator('#timeline li.done').count();
assert.equal(done, 7, 'every step of the timeline is done');
assert.equal(await page.locator('#payment-status').innerText(), 'captured');
log(`statuses shown: ${seen.join(' → ')}; courier positions: ${positions.size}`);
await shot(page, 'order-delivered');

await page.goto('/#/orders');
await page.locator(`#order-list a[href="#/orders/${id}"]`).waitFor();
await shot(page, 'order-history');

// A phone-sized screen: nothing wider than the screen.
// Signed in from the keyboard alone: Tab from e-mail to password, Enter.
const phone = await s.person('phone', { width: 390, height: 844 });
await phone.goto('/#/signin');
await phone.locator('#login-form input[name="email"]').focus();
await phone.keyboard.type('customer@feastfast.test');
await phone.keyboard.press('Tab');
await phone.keyboard.type('feastfast');
await phone.keyboard.press('Enter');
await phone.waitForFunction(() => location.hash === '#/restaurants');
await phone.locator('#restaurant-list a').first().waitFor();
await shot(phone, 'phone-restaurants');
await phone.goto(`/#/orders/${id}`);
await phone.locator('#timeline li.done').first().waitFor();
await shot(phone, 'phone-order');
const width = await phone.evaluate(() => document.documentElement.scrollWidth);
assert.ok(width <= 390, `the page is ${width}px wide on a 390px screen`);

await finish(s, 'customer');
