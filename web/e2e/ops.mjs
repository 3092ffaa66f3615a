// Fault isolation from the ops view: the live service map shows every
// service up; ops kills delivery and the map shows it down; a customer's
// new order still reaches CONFIRMED (its page saying the courier part is
// unavailable); ops starts delivery and the order gets a courier.

import assert from 'node:assert/strict';
import { demoLogin, finish, launch, log, onAPhone, order, searchResult, shot, statusOf, until, watchOrder } from './lib.mjs';

const s = await launch();
const ops = await s.person('ops');
const customer = await s.person('customer');

await ops.goto('/#/ops');
const node = (name) => ops.locator(`#service-map [data-service="${name}"]`);
for (const name of ['gateway', 'users', 'restaurants', 'orders', 'payments', 'delivery']) {
  await until(`${name} to be up on the map`, async () => (await node(name).getAttribute('data-status')) === 'up');
}
// Two readings make rates; the orders' counts are there.
await until('request rates on the map', async () =>
  /^\d+\.\d req\/s$/.test(await node('gateway').locator('.node-figure').first().textContent()));
await ops.locator('#order-counts [data-status="DELIVERED"]').waitFor();
const edges = await ops.locator('#service-map path.edge').count();
assert.ok(edges >= 8, `the map shows only ${edges} edges`);
await shot(ops, 'ops');

// Each click is seen to reach the API (the table is redrawn every second).
const [killed] = await Promise.all([
  ops.waitForResponse((r) => r.url().endsWith('/ops/services/delivery/stop?mode=kill'), { timeout: 30_000 }),
  ops.locator('[data-control="kill-delivery"]').click(),
]);
assert.equal(killed.status(), 200, `the kill answered ${killed.status()}`);
await until('delivery to be down on the map', async () => (await node('delivery').getAttribute('data-status')) === 'down');
await ops.locator('[data-control="start-delivery"]').waitFor();
await shot(ops, 'ops-delivery-killed');

await demoLogin(customer, 'customer@feastfast.test');
const id = await order(customer, 'sakura');
log(`placed order ${id} with delivery down`);
await watchOrder(customer, 'CONFIRMED', 20_000);
await customer.locator('#degraded').waitFor();
await shot(customer, 'order-while-delivery-is-down');
// No courier while delivery is down.
await new Promise((r) => setTimeout(r, 1500));
assert.equal(await statusOf(customer), 'CONFIRMED');

const [started] = await Promise.all([
  ops.waitForResponse((r) => r.url().endsWith('/ops/services/delivery/start'), { timeout: 30_000 }),
  ops.locator('[data-control="start-delivery"]').click(),
]);
assert.equal(started.status(), 200, `the start answered ${started.status()}`);
await until('delivery to be up again', async () => (await node('delivery').getAttribute('data-status')) === 'up');
const reached = await until('the order to get a courier', async () => {
  const status = await statusOf(customer);
  return ['COURIER_ASSIGNED', 'PICKED_UP', 'DELIVERED'].includes(status) && status;
}, 30_000);
log(`after delivery came back: ${reached}`);
assert.equal(await customer.locator('#timeline li[data-step="COURIER_ASSIGNED"].done').count(), 1);
await shot(customer, 'order-after-delivery-is-back');
await shot(ops, 'ops-delivery-back');

// A zero-downtime restart from the page: answered 200 once the new process
// serves, payments is up throughout, the page shows no problem.
const [restarted] = await Promise.all([
  ops.waitForResponse((r) => r.url().endsWith('/ops/services/payments/restart'), { timeout: 60_000 }),
  ops.locator('[data-control="restart-payments"]').click(),
]);
assert.equal(restarted.status(), 200, `the restart answered ${restarted.status()}`);
assert.equal((await restarted.json()).status, 'running');
assert.equal(await node('payments').getAttribute('data-status'), 'up');
assert.ok(await ops.locator('#problem').isHidden(), 'the restart reported a problem');
log('restarted payments from the ops page');
// Restaurants down: a menu the customer has seen comes from the gateway's
// edge cache, marked as the last copy; it comes back fresh on return.
await (await searchResult(customer, 'sakura')).click();
await customer.locator('.menu-item').first().waitFor();
const menuUrl = customer.url();
await ops.locator('[data-control="kill-restaurants"]').click();
await until('restaurants to be down on the map', async () => (await node('restaurants').getAttribute('data-status')) === 'down');
// Each look reloads the page, then gives it a moment to fetch and draw.
const look = async () => { await customer.goto(menuUrl); await customer.reload(); await customer.waitForTimeout(300); };
await until('the menu to be shown as the last copy', async () => {
  await look();
  return (await customer.locator('#stale').count()) === 1 && (await customer.locator('.menu-item').count()) > 0;
});
await shot(customer, 'menu-while-restaurants-is-down');
await ops.locator('[data-control="start-restaurants"]').click();
await until('restaurants to be up again', async () => (await node('restaurants').getAttribute('data-status')) === 'up');
await until('the menu to be fresh again', async () => {
  await look();
  return (await customer.locator('.menu-item').count()) > 0 && (await customer.locator('#stale').count()) === 0;
});
log('a seen menu was served stale while restaurants was down, fresh after');

await onAPhone(s, { hash: '#/ops', ready: '#service-map [data-service="delivery"]', name: 'ops' });

await finish(s, 'ops');
