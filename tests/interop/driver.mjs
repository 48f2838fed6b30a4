// The user at the browser: opens the authorization URL in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core), signs in on node-oidc-provider's login page (or
// submits the username/password form of the MCP Python SDK's simple-auth example, with the
// demo credentials it fills in), approves (or cancels) on the provider's consent page, follows
// the redirect into the client's loopback callback listener and reads the page the client
// served there, from the DOM.
//
// Usage: node driver.mjs AUTHORIZATION_URL
// Environment: INTEROP_DIR (results: driver-LABEL.json), INTEROP_SHOT_DIR (screenshots:
// LABEL.png, plus LABEL-login.png and LABEL-consent.png), INTEROP_LABEL (default `login`),
// INTEROP_DRIVER_MODE (`approve`, default, or `deny`: click the consent page's Cancel link;
// `device`: the URL is a device login's verification_uri_complete, so confirm the code, sign
// in and approve, and end on the provider's success page instead of a callback).
//
// It writes its result file in every case, also on failure, and gives up after 60 s, or
// as soon as INTEROP_DIR is removed (the run that started it has ended).

import * as fs from 'node:fs';
import * as path from 'node:path';

import { chromium } from 'playwright-core';

const url = process.argv[2];
const dir = process.env.INTEROP_DIR;
const shotDir = process.env.INTEROP_SHOT_DIR || dir;
const label = process.env.INTEROP_LABEL || 'login';
const mode = process.env.INTEROP_DRIVER_MODE || 'approve';
const resultFile = path.join(dir, `driver-${label}.json`);
const callbackRe = /^http:\/\/(127\.0\.0\.1|localhost):\d+\/callback(\?|$)/;

const result = { label, mode, ok: false, pages: [] };
let browser;

function finish(code) {
  fs.writeFileSync(resultFile, `${JSON.stringify(result, null, 2)}\n`);
  process.exit(code);
}

let givingUp = false;
async function giveUp(why) {
  if (givingUp) return;
  givingUp = true;
  result.error = why;
  const closing = browser ? browser.close().catch(() => {}) : Promise.resolve();
  await Promise.race([closing, new Promise((resolve) => { setTimeout(resolve, 3000); })]);
  try { finish(3); } catch { process.exit(3); }
}

const watchdog = setTimeout(() => giveUp('the driver gave up after 60 s'), 60_000);
// The run that started this driver ended (its directory is gone): stop too.
const orphanCheck = setInterval(() => {
  if (!fs.existsSync(dir)) giveUp('the run ended');
}, 1000);

async function shot(page, name) {
  const file = path.join(shotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Clicks and waits for the page to land on a different URL, fully loaded. */
async function clickAway(page, locator) {
  const before = page.url();
  await Promise.all([
    page.waitForURL((u) => u.href !== before, { waitUntil: 'load', timeout: 15_000 }),
    locator.click(),
  ]);
}

try {
  if (!url) throw new Error('usage: node driver.mjs AUTHORIZATION_URL');
  fs.mkdirSync(shotDir, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    // This machine's network is closed: without these Chromium's background connections are
    // refused, many at a time, and every start fails to look up Google's hosts.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // A new context: its own cookie jar, so every login is a fresh user agent.
  const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on('response', (response) => {
    if (callbackRe.test(response.url())) {
      result.callbackStatus = response.status();
      const h = response.headers();
      result.callbackHeaders = {
        'content-security-policy': h['content-security-policy'],
        'x-frame-options': h['x-frame-options'],
      };
    }
  });

  await page.goto(url, { waitUntil: 'load' });
  const heading = async () => ((await page.locator('h1').count()) ? (await page.locator('h1').first().innerText()).trim() : '');
  const done = async () => (mode === 'device' ? (await heading()) === 'Sign-in Success' : callbackRe.test(page.url()));
  for (let step = 0; step < 8 && !(await done()); step += 1) {
    const login = page.locator('input[name="login"]');
    const username = page.locator('form input[name="username"]');
    const consent = page.locator('input[name="prompt"][value="consent"]');
    const confirm = page.locator('form[id="op.deviceConfirmForm"]');
    if (mode === 'device' && (await confirm.count())) {
      result.pages.push('confirm');
      result.confirmText = (await page.locator('.container').innerText()).trim();
      await shot(page, `${label}-confirm`);
      await clickAway(page, page.getByRole('button', { name: 'Continue' }));
    } else if (await login.count()) {
      result.pages.push('login');
      await page.fill('input[name="login"]', 'alice');
      await page.fill('input[name="password"]', 'wonderland');
      await shot(page, `${label}-login`);
      await clickAway(page, page.locator('button[type="submit"]'));
    } else if (await username.count()) {
      // simple-auth's form comes with its demo credentials filled in: submitted as they are.
      result.pages.push('login');
      result.username = await username.inputValue();
      if (!result.username || !(await page.locator('form input[name="password"]').inputValue())) {
        throw new Error('the username/password form has no credentials filled in');
      }
      await shot(page, `${label}-login`);
      await clickAway(page, page.locator('form button[type="submit"]'));
    } else if (await consent.count()) {
      result.pages.push('consent');
      result.consentText = (await page.locator('.login-card').innerText()).trim();
      await shot(page, `${label}-consent`);
      if (mode === 'deny') {
        await clickAway(page, page.getByRole('link', { name: '[ Cancel ]' }));
      } else {
        await clickAway(page, page.getByRole('button', { name: 'Continue' }));
      }
    } else {
      result.pages.push(`unexpected: ${page.url()}`);
      result.unexpectedText = (await page.locator('body').innerText()).slice(0, 2000);
      await shot(page, `${label}-unexpected`);
      throw new Error(`unexpected page ${page.url()}`);
    }
  }
  const finalUrl = new URL(page.url());
  if (mode === 'device') {
    if (!(await done())) throw new Error(`never reached the success page; at ${finalUrl.href}`);
    result.heading = await heading();
    result.text = (await page.locator('body').innerText()).trim();
  } else {
    if (!callbackRe.test(finalUrl.href)) throw new Error(`never reached the callback; at ${finalUrl.href}`);
    // Names only (and the error code): the code and state stay out of the result file.
    result.callbackParams = [...finalUrl.searchParams.keys()].sort();
    result.callbackError = finalUrl.searchParams.get('error');
    result.callbackIss = finalUrl.searchParams.get('iss');
    result.title = await page.title();
    result.heading = (await page.locator('h1').innerText()).trim();
    result.text = (await page.locator('body').innerText()).trim();
  }
  result.screenshot = await shot(page, label);
  result.ok = true;
} catch (err) {
  result.error = String(err && err.message ? err.message : err).split('\n')[0];
} finally {
  clearTimeout(watchdog);
  clearInterval(orphanCheck);
  if (browser) await browser.close().catch(() => {});
}
finish(result.ok ? 0 : 1);
