// Shared by the browser scenarios: a headless Debian chromium driven by
// playwright-core (never a downloaded browser), one context per person,
// console errors collected on every page, screenshots for people to look at.

import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';

export const BASE = process.env.FEASTFAST_URL || 'http://127.0.0.1:8080';
export const SHOTS = process.env.SCREENSHOT_DIR || 'screenshots';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function log(...parts) {
  const t = new Date().toISOString().slice(11, 23);
  console.log(`[${t}]`, ...parts);
}

export async function launch() {
  mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  const problems = [];
  // Console errors a scenario provokes on purpose (an API error it then
  // checks the UI shows); each allowance is used up once.
  const allowed = [];
  return {
    browser,
    problems,
    /** Allows `times` console errors matching `pattern` (deliberate ones). */
    allowConsoleError(pattern, times = 1) {
      for (let i = 0; i < times; i += 1) allowed.push(pattern);
    },
    /** Ends the allowances not used up: later errors count again. */
    stopAllowing() {
      allowed.length = 0;
    },
    /** A new person: own context (own sessionStorage), own page. */
    async person(name, viewport = { width: 1280, height: 900 }, baseURL = BASE) {
      const context = await browser.newContext({ viewport, baseURL });
      const page = await context.newPage();
      page.setDefaultTimeout(20_000);
      page.on('console', (msg) => {
        if (msg.type() !== 'error') return;
        const text = `${msg.text()} (${msg.location()?.url || ''})`;
        const i = allowed.findIndex((p) => p.test(text));
        if (i >= 0) {
          allowed.splice(i, 1);
          log(`${name}: expected console error: ${text}`);
        } else {
          log(`${name}: CONSOLE ERROR: ${text}`);
          problems.push(`${name}: console error: ${text}`);
        }
      });
      page.on('requestfailed', (r) => log(`${name}: request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
      page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.stack || e}`));
      return page;
    },
    async close() {
      await browser.close();
    },
  };
}

export async function shot(page, name) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  log(`screenshot ${path}`);
}

/** Opens the app and signs in with the demo button for `email`. */
export async function demoLogin(page, email) {
  await page.goto('/#/signin');
  await page.locator(`[data-demo="${email}"]`).click();
  await page.waitForFunction(() => !location.hash.startsWith('#/signin'));
}

/** Waits until `read()` returns a truthy value, polling every 100 ms. */
export async function until(what, read, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await read();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The order page's status as shown. */
export const statusOf = (page) => page.locator('main').getAttribute('data-status');

/**
 * Follows an order page until it shows `target`, recording every status it
 * showed and every courier position (to prove the page moved by itself).
 */
export async function watchOrder(page, target, timeoutMs, onStatus = async () => {}) {
  const seen = [];
  const positions = new Set();
  await until(`the order page to show ${target}`, async () => {
    // One read of the page, so the courier cannot vanish between looks.
    const { status, courier } = await page.evaluate(() => {
      const m = document.querySelector('[data-marker="courier"]');
      return {
        status: document.querySelector('main')?.dataset.status,
        courier: m ? `${m.dataset.lat},${m.dataset.lng}` : null,
      };
    });
    if (status && seen[seen.length - 1] !== status) {
      seen.push(status);
      log(`order page: ${status}`);
      await onStatus(status);
    }
    if (courier) positions.add(courier);
    return status === target;
  }, timeoutMs);
  return { seen, positions };
}

/**
 * The link to the first restaurant whose name matches `query`, once the
 * list shows the search's results. The page draws every restaurant first;
 * taking the list's first link before the search answered clicked the
 * first of all (Burger Werk, which does not accept on its own), and a busy
 * CI machine did so now and then.
 */
export async function searchResult(page, query) {
  await page.goto('/#/restaurants');
  await page.getByLabel('Search').fill(query);
  await page.getByRole('button', { name: 'Search' }).click();
  const link = page.locator('#restaurant-list a').filter({ hasText: new RegExp(query, 'i') }).first();
  await link.waitFor();
  return link;
}

/** Orders from the restaurant found by `query` as the signed-in customer. */
export async function order(page, query, { pick = null, method = 'pm_card_visa', beforePlace = null } = {}) {
  await (await searchResult(page, query)).click();
  await page.locator('.menu-item button:not([disabled])').first().click();
  if (pick) {
    // Pick the delivery point by clicking the checkout map.
    const map = page.locator('#checkout svg.map');
    const box = await map.boundingBox();
    await page.mouse.click(box.x + box.width * pick.x, box.y + box.height * pick.y);
  }
  await page.getByLabel('Payment method').selectOption(method);
  if (beforePlace) await beforePlace();
  await page.locator('#place-order').click();
  await page.waitForURL(/#\/orders\/[0-9a-f-]+$/);
  return page.url().split('/').pop();
}

export async function finish(session, name) {
  await session.close();
  if (session.problems.length) {
    console.error(`${name}: ${session.problems.length} problem(s):\n${session.problems.join('\n')}`);
    process.exit(1);
  }
  log(`${name}: passed`);
}

/**
 * Clicks `button` and measures how long until `page` (the customer's
 * order page, fed by server-sent events) shows `status`, in ms.
 */
export async function pushDelay(button, page, status, limitMs) {
  const started = Date.now();
  await button.click();
  await page.waitForFunction((s) => document.querySelector('main')?.dataset.status === s, status,
    { polling: 'raf', timeout: 15_000 });
  const ms = Date.now() - started;
  log(`pushed ${status} to the order page ${ms} ms after the click`);
  if (ms > limitMs) throw new Error(`${status} took ${ms} ms to reach the order page (limit ${limitMs} ms)`);
  return ms;
}

/**
 * A TCP proxy in front of the gateway, to break a browser's connections
 * for real: `cut()` drops every open connection and refuses new ones until
 * `mend()`.
 */
export async function proxy() {
  const target = new URL(BASE);
  const open = new Set();
  let refusing = false;
  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(target.port), target.hostname);
    open.add(client);
    open.add(upstream);
    const forget = () => {
      client.destroy();
      upstream.destroy();
      open.delete(client);
      open.delete(upstream);
    };
    client.on('error', forget).on('close', forget);
    upstream.on('error', forget).on('close', forget);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    cut() {
      refusing = true;
      for (const socket of open) socket.destroy();
      open.clear();
    },
    mend() {
      refusing = false;
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

/**
 * Opens `hash` on a phone-sized screen (390 × 844), signed in as `email`
 * (or not at all), waits for `ready`, saves a screenshot and fails if the
 * page is wider than the screen.
 */
export async function onAPhone(session, { email = null, hash, ready, name }) {
  const phone = await session.person(`phone ${name}`, { width: 390, height: 844 });
  if (email) await demoLogin(phone, email);
  await phone.goto(`/${hash}`);
  await phone.locator(ready).first().waitFor();
  await shot(phone, `phone-${name}`);
  const width = await phone.evaluate(() => document.documentElement.scrollWidth);
  if (width > 390) throw new Error(`${hash} is ${width}px wide on a 390px screen`);
  await phone.context().close();
}
