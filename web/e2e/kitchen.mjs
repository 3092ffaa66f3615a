// By hand, simulators off: a customer orders from Burger Werk (a
// manual-accept restaurant); the owner sees the ticket with its countdown
// and accepts it while the customer's connection is cut, and the
// customer's page reconnects and moves on by itself; the owner
// edits the menu and marks the order ready; a courier goes online next to
// the restaurant, gets the assignment on the map, picks up and delivers,
// and the customer's page reaches DELIVERED. Then one order rejected by
// the owner, one cancelled by the customer, and a new owner opening a
// restaurant.

import assert from 'node:assert/strict';
import { demoLogin, finish, launch, log, onAPhone, order, proxy, pushDelay, shot, statusOf, until, watchOrder } from './lib.mjs';

const BURGER_WERK = { lat: 52.5075, lng: 13.4508 };
// The promise: each status change on the page within half a second.
const PUSH_LIMIT_MS = 500;

const s = await launch();
// The customer's browser reaches the gateway through a proxy the test can cut.
const line = await proxy();
const customer = await s.person('customer', undefined, line.url);
const owner = await s.person('owner');
const courier = await s.person('courier');

await demoLogin(customer, 'customer@feastfast.test');
const id = await order(customer, 'burger');
log(`placed order ${id}`);
await until('the order to wait for the restaurant', async () => (await statusOf(customer)) === 'AWAITING_RESTAURANT');
await customer.evaluate(() => {
  window.__sameDocument = true;
});

await demoLogin(owner, 'owner@feastfast.test');
await owner.getByRole('link', { name: 'Burger Werk' }).click();
const ticket = owner.locator(`.ticket[data-order="${id}"]`);
await ticket.waitFor();
assert.equal(await ticket.getAttribute('data-status'), 'PENDING');
assert.match(await ticket.locator('.countdown').innerText(), /\d+ s to accept/);
await shot(owner, 'owner-ticket-pending');
// The customer's connection drops and stays down while the owner accepts;
// once it is back, the page reconnects by itself and catches up.
const liveState = () => customer.locator('#live-state').getAttribute('data-state');
await until('the order stream to be live', async () => (await liveState()) === 'live');
// Reconnection attempts while the line is cut fail in the console, on purpose.
s.allowConsoleError(/net::ERR_(EMPTY_RESPONSE|CONNECTION_RESET|CONNECTION_CLOSED|CONNECTION_REFUSED|INCOMPLETE_CHUNKED_ENCODING|SOCKET_NOT_CONNECTED)/, 10);
line.cut();
await until('the page to notice the drop', async () => (await liveState()) === 'reconnecting', 10_000);
await owner.locator(`[data-action="accept-${id}"]`).click();
await until('the ticket to be accepted', async () => (await ticket.getAttribute('data-status')) === 'ACCEPTED');
await new Promise((r) => setTimeout(r, 500));
assert.equal(await statusOf(customer), 'AWAITING_RESTAURANT', 'the page changed while cut off');
await shot(customer, 'customer-reconnecting');
line.mend();
await watchOrder(customer, 'CONFIRMED', 15_000);
await until('the order stream to be live again', async () => (await liveState()) === 'live', 10_000);
s.stopAllowing();
await shot(customer, 'customer-confirmed');

// Menu editing: a new price and stock, saved through the API.
const row = owner.locator('#menu-editor tbody tr').first();
await row.getByLabel(/Price of/).fill('12.34');
await row.getByLabel(/Stock of/).fill('40');
await row.locator('button[data-save]').click();
await row.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
await owner.locator(`[data-action="ready-${id}"]`).click();
await until('the ticket to be ready', async () => (await ticket.getAttribute('data-status')) === 'READY');
await shot(owner, 'owner-ticket-ready');
const item = await row.getAttribute('data-item');
const detail = await owner.evaluate(async (rid) => (await fetch(`/api/v1/restaurants/${rid}`)).json(),
  owner.url().split('/').pop());
const edited = detail.menu.find((m) => m.id === item);
assert.equal(edited.price_cents, 1234);
assert.equal(edited.stock, 40);

// A courier goes online next to the restaurant and gets the delivery.
await demoLogin(courier, 'courier@feastfast.test');
await courier.getByLabel('Latitude').fill(String(BURGER_WERK.lat));
await courier.getByLabel('Longitude').fill(String(BURGER_WERK.lng));
await courier.locator('#toggle-online').click();
await courier.locator('#courier-state').filter({ hasText: 'Online' }).waitFor();
await courier.locator('#pickup-delivery').waitFor({ timeout: 30_000 });
await courier.locator('[data-marker="restaurant"]').waitFor();
await courier.locator('[data-marker="home"]').waitFor();
await shot(courier, 'courier-assigned');
await watchOrder(customer, 'COURIER_ASSIGNED', 15_000);
await pushDelay(courier.locator('#pickup-delivery'), customer, 'PICKED_UP', PUSH_LIMIT_MS);
await courier.locator('#deliver-delivery').waitFor();

// The courier rides: a click on their map and "Update my position"; the
// customer's map shows the courier there within half a second.
const courierMap = courier.locator('svg.map');
const box = await courierMap.boundingBox();
await courier.mouse.click(box.x + box.width * 0.55, box.y + box.height * 0.45);
const lat = Number(await courier.getByLabel('Latitude').inputValue()).toFixed(5);
const lng = Number(await courier.getByLabel('Longitude').inputValue()).toFixed(5);
const moveStarted = Date.now();
await courier.getByRole('button', { name: 'Update my position' }).click();
await customer.waitForFunction(([la, ln]) => {
  const m = document.querySelector('[data-marker="courier"]');
  return m && m.dataset.lat === la && m.dataset.lng === ln;
}, [lat, lng], { polling: 'raf', timeout: 15_000 });
const moveMs = Date.now() - moveStarted;
log(`pushed the courier's new position to the order page ${moveMs} ms after the click`);
assert.ok(moveMs <= PUSH_LIMIT_MS, `the courier's move took ${moveMs} ms to reach the order page`);
await shot(customer, 'customer-picked-up');
await pushDelay(courier.locator('#deliver-delivery'), customer, 'DELIVERED', PUSH_LIMIT_MS);
await courier.locator('#assignment').filter({ hasText: 'No delivery yet' }).waitFor();
await shot(courier, 'courier-delivered');
assert.equal(await customer.evaluate(() => window.__sameDocument), true, 'the order page reloaded');
assert.equal(await customer.locator('#timeline li.done').count(), 7);
await shot(customer, 'customer-delivered-by-hand');

// The owner rejects the next order: the customer's page says so, with
// the kitchen's reason.
const rejected = await order(customer, 'burger');
await owner.locator(`[data-action="reject-${rejected}"]`).click();
await watchOrder(customer, 'REJECTED', 15_000);
await customer.locator('#order-notice').filter({ hasText: 'The kitchen cannot make it' }).waitFor();
await shot(customer, 'customer-rejected');

// And the customer cancels one before the kitchen decides.
const cancelled = await order(customer, 'burger');
await until('the cancel button', async () => customer.locator('#cancel-order').isVisible());
await customer.locator('#cancel-order').click();
await watchOrder(customer, 'CANCELLED', 15_000);
await owner.locator(`.ticket[data-order="${cancelled}"][data-status="CANCELLED"]`).waitFor();
await shot(owner, 'owner-tickets-after');

// A new owner registers, opens a restaurant placed by a click on the map,
// and adds a dish.
const newcomer = await s.person('new owner');
await newcomer.goto('/#/signin');
const form = newcomer.locator('#register-form');
await form.getByLabel('Name').fill('Nora Newcomer');
await form.getByLabel('E-mail').fill(`nora-${Date.now()}@example.com`);
await form.getByLabel(/Password/).fill('a good long password');
await form.getByLabel('I am a').selectOption('restaurant_owner');
await form.getByRole('button').click();
await newcomer.waitForFunction(() => location.hash === '#/owner');
await newcomer.getByLabel('Name').fill('Noodle Nook');
await newcomer.getByLabel('Cuisine').fill('Noodles');
await newcomer.getByLabel('Address').fill('Skalitzer Straße 1, Berlin');
const newMap = newcomer.locator('svg.map');
const at = await newMap.boundingBox();
await newcomer.mouse.click(at.x + at.width * 0.4, at.y + at.height * 0.6);
await newcomer.getByRole('button', { name: 'Open restaurant' }).click();
await newcomer.getByRole('link', { name: 'Noodle Nook' }).waitFor();
await newcomer.getByLabel('Name').fill('Dan dan noodles');
await newcomer.getByLabel('Description').fill('Sesame, chili, pork');
await newcomer.getByLabel('Price (€)').fill('9.50');
await newcomer.getByLabel('Stock', { exact: true }).fill('12');
await newcomer.getByRole('button', { name: 'Add dish' }).click();
await newcomer.locator('#menu-editor tbody tr', { hasText: 'Dan dan noodles' }).waitFor();
await shot(newcomer, 'new-owner-restaurant');

await onAPhone(s, { email: 'owner@feastfast.test', hash: '#/owner', ready: '#menu-editor', name: 'owner' });
await onAPhone(s, { email: 'courier@feastfast.test', hash: '#/courier', ready: '#toggle-online', name: 'courier' });

line.close();
await finish(s, 'kitchen');
