// tests/browser/dashboard.mjs — drives the dashboard in headless Chromium (playwright-core from
// tests/js). Run by dashboard_test.sh, which starts the branches and passes:
//   BG_URL            the top branch's base URL
//   BG_TOKEN_FILE     a file holding its admin token (never printed)
//   BG_PEER           name of the registered master branch that must show up as "up"
//   BG_JS_DIR         tests/js (where node_modules is)
//   BG_ARTIFACTS_DIR  where the screenshots go
//   CHROMIUM_BIN      the browser
// Exits non-zero with a message on the first failed check.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const base = env('BG_URL').replace(/\/$/, '');
const token = fs.readFileSync(env('BG_TOKEN_FILE'), 'utf8').trim();
const peer = env('BG_PEER');
const artifacts = env('BG_ARTIFACTS_DIR');
const require = createRequire(path.join(env('BG_JS_DIR'), 'package.json'));
const { chromium } = require('playwright-core');

const WAIT_MS = 30000;
let current = '';

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  await fn();
  console.log(`ok - ${name} (${Date.now() - t0} ms)`);
}

// Waits until the element's trimmed text satisfies want (a string for equality, or a RegExp).
async function waitText(page, selector, want, timeout = WAIT_MS) {
  const spec = want instanceof RegExp ? { re: want.source, flags: want.flags } : { eq: want };
  try {
    await page.waitForFunction(
      ([sel, w]) => {
        const n = document.querySelector(sel);
        if (!n) return false;
        const t = n.textContent.trim();
        return w.re !== undefined ? new RegExp(w.re, w.flags).test(t) : t === w.eq;
      },
      [selector, spec],
      { timeout, polling: 100 },
    );
  } catch (e) {
    const seen = await page.evaluate((sel) => {
      const n = document.querySelector(sel);
      return n ? JSON.stringify(n.textContent.trim()) : '(no such element)';
    }, selector);
    throw new Error(`${selector}: wanted ${want}, saw ${seen} after ${timeout} ms`);
  }
}

async function activeId(page) {
  return page.evaluate(() => document.activeElement && document.activeElement.id);
}

// Presses Tab until the element with id is focused (at most max presses).
async function tabTo(page, id, max = 12) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press('Tab');
    if ((await activeId(page)) === id) return;
  }
  throw new Error(`#${id} not reached with ${max} Tab presses (focus on #${await activeId(page)})`);
}

async function noHorizontalOverflow(page, label) {
  const m = await page.evaluate(() => ({
    vw: document.documentElement.clientWidth,
    doc: document.documentElement.scrollWidth,
    body: document.body.scrollWidth,
  }));
  check(m.doc <= m.vw && m.body <= m.vw,
    `${label}: the page overflows horizontally (viewport ${m.vw}, document ${m.doc}, body ${m.body})`);
}

async function apiJson(method, p, body, headers = {}) {
  const res = await fetch(base + p, {
    method,
    headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = null; }
  return { status: res.status, json, text };
}

// An assembly whose only file is not media: the probe fails at once and its job is dead.
async function makeDeadLetter() {
  const created = await apiJson('POST', '/api/v1/assemblies',
    JSON.stringify({ template_id: 'probe', files: [{ name: 'note.txt', size: 5 }] }),
    { 'Content-Type': 'application/json' });
  check(created.status === 201 || created.status === 200, `create assembly: HTTP ${created.status} ${created.text}`);
  const id = created.json.assembly_id;
  const b64 = (s) => Buffer.from(s).toString('base64');
  const res = await fetch(created.json.tus_url, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Tus-Resumable': '1.0.0',
      'Upload-Length': '5',
      'Upload-Metadata': `assembly_id ${b64(id)},filename ${b64('note.txt')}`,
      'Content-Type': 'application/offset+octet-stream',
    },
    body: 'hello',
  });
  check(res.status === 201, `tus creation-with-upload: HTTP ${res.status}`);
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    const r = await apiJson('GET', '/api/v1/jobs?state=dead');
    const job = (r.json && r.json.jobs || []).find((j) => j.assembly_id === id);
    if (job) return { id, job: String(job.id) };
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`assembly ${id} has no dead job after ${WAIT_MS} ms`);
}

async function main() {
  fs.mkdirSync(artifacts, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env('CHROMIUM_BIN'),
    headless: true,
    // No background traffic: this machine's network is closed, and Chromium's
    // own connections (updates, sync, QUIC probes) only add noise and delay.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--disable-quic',
           '--no-first-run', '--disable-background-networking', '--disable-component-update',
           '--disable-sync'],
  });
  const problems = [];
  // Failed loads the page is expected to log (Chromium logs every 4xx answer to fetch()).
  const expectedFailures = ['/favicon.ico'];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: 'light' });
    const page = await context.newPage();
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (msg) => {
      const where = msg.location() && msg.location().url || '';
      if (msg.type() !== 'error') return;
      if (msg.text().startsWith('Failed to load resource') && expectedFailures.some((f) => where.includes(f)))
        return;
      problems.push(`console error: ${msg.text()} (${where})`);
    });
    page.on('request', (req) => {
      const u = req.url();
      if (!u.startsWith(base + '/') && !u.startsWith('data:')) problems.push(`request to another origin: ${u}`);
    });

    await step('the page loads with its headers', async () => {
      const res = await page.goto(base + '/');
      check(res.status() === 200, `GET / answered ${res.status()}`);
      const h = res.headers();
      check((h['content-type'] || '').startsWith('text/html'), `content-type ${h['content-type']}`);
      check((h['content-security-policy'] || '').includes("script-src 'self'"), 'no strict CSP on GET /');
      await waitText(page, '#self-name', 'top');
      await waitText(page, '#self-type', 'Top branch');
    });

    await step('a wrong token is refused, by keyboard', async () => {
      expectedFailures.push('/api/v1/branches?limit=1');
      await tabTo(page, 'token');
      await page.keyboard.type('not-the-admin-token-0123456789');
      await page.keyboard.press('Tab');
      check((await activeId(page)) === 'login-submit', `Tab after the token field focused #${await activeId(page)}`);
      await page.keyboard.press('Enter');
      await waitText(page, '#login-error', /not accepted/);
      const stored = await page.evaluate(() => sessionStorage.length);
      check(stored === 0, 'a refused token was stored');
      expectedFailures.pop();
    });

    await step(`sign in by keyboard; ${peer} shows up`, async () => {
      await page.fill('#token', '');
      await page.focus('#token');
      await page.keyboard.type(token);
      await page.keyboard.press('Enter');
      await page.waitForSelector('#app', { state: 'visible', timeout: WAIT_MS });
      const row = `#branches-body tr[data-branch="${peer}"]`;
      await waitText(page, `${row} [data-col="state"] .badge`, 'up');
      await waitText(page, `${row} [data-col="type"] .badge`, 'Master');
      await waitText(page, `${row} [data-col="rtt"]`, /^[0-9.]+ ms$/);
      await waitText(page, `${row} [data-col="breaker"] .badge`, 'closed');
      await waitText(page, `${row} [data-col="outbox"]`, /^[0-9]+/);
      await waitText(page, `${row} [data-col="ping"] time`, /ago|just now/);
      await waitText(page, '#refreshed', /^Updated [0-9]{2}:[0-9]{2}:[0-9]{2}$/);
      await waitText(page, '#branches-note', /top branch and its 1 master branch/);
      await waitText(page, '#stat-peers', '1 / 1');
      await waitText(page, '#self-fact-health', 'ready');
      const s = await page.evaluate(() => ({
        session: sessionStorage.getItem('branchgate.adminToken'),
        local: localStorage.length,
        input: document.getElementById('token').value,
      }));
      check(s.session === token, 'the token is not in sessionStorage');
      check(s.local === 0, 'something was written to localStorage');
      check(s.input === '', 'the token stays in the form field');
      const html = await page.content();
      check(!html.includes(token), 'the token appears in the page');
      const options = await page.$$eval('#branch-filter option', (os) => os.map((o) => o.value));
      check(options.includes('top') && options.includes(peer), `branch filter options: ${options}`);
    });

    await step('the ping button answers', async () => {
      await page.click(`#branches-body tr[data-branch="${peer}"] button`);
      await waitText(page, '#branches-announce', new RegExp(`^${peer} answered in [0-9.]+ ms\\.$`));
    });

    let dead;
    await step('live events over SSE, the recent list and a dead letter', async () => {
      await waitText(page, '#stream-state', /^Live/);
      dead = await makeDeadLetter();
      await page.waitForSelector(`#events li[data-event="assembly:failed"][data-assembly="${dead.id}"]`,
        { timeout: WAIT_MS });
      await page.waitForSelector(`#events li[data-event="upload:progress"][data-assembly="${dead.id}"]`,
        { timeout: WAIT_MS });
      await waitText(page, `#assemblies-body tr[data-assembly="${dead.id}"] [data-col="status"]`, 'INVALID_INPUT');
      await waitText(page, `#dead-body tr[data-job="${dead.job}"] [data-col="error"]`, /not a media file/);
      await waitText(page, '#stat-dead', '1');
    });

    await step('requeue a dead letter', async () => {
      await page.click(`#dead-body tr[data-job="${dead.job}"] button`);
      await waitText(page, '#queue-announce', `Job ${dead.job} was requeued.`);
    });

    await step('screenshot (desktop)', async () => {
      await page.evaluate(() => window.scrollTo(0, 0));
      const file = path.join(artifacts, 'dashboard.png');
      await page.screenshot({ path: file, fullPage: true });
      console.log(`screenshot: ${file}`);
    });

    await step('a branch filter without live stream says so', async () => {
      // This branch streams only its own assemblies: 404 for a peer's name.
      expectedFailures.push(`/api/stream?branch=${peer}`);
      await page.selectOption('#branch-filter', peer);
      await waitText(page, '#stream-state', /unavailable/);
      await waitText(page, '#assemblies-empty', `No recent assemblies of ${peer}.`);
      await page.selectOption('#branch-filter', '');
      await waitText(page, '#stream-state', /^Live/);
    });

    await step('375 px wide: nothing overflows the body', async () => {
      await page.setViewportSize({ width: 375, height: 812 });
      await page.waitForTimeout(200);
      await noHorizontalOverflow(page, '375 px');
      const wrap = await page.$eval('#branches-table', (t) => {
        const w = t.closest('.table-wrap');
        return { overflow: getComputedStyle(w).overflowX, inner: w.scrollWidth, outer: w.clientWidth };
      });
      check(wrap.overflow === 'auto', `the branches table does not scroll (overflow-x ${wrap.overflow})`);
      const file = path.join(artifacts, 'dashboard-phone.png');
      await page.screenshot({ path: file, fullPage: true });
      console.log(`screenshot: ${file}`);
    });

    await step('reload keeps the session; forget token by keyboard', async () => {
      await page.reload();
      await waitText(page, `#branches-body tr[data-branch="${peer}"] [data-col="state"] .badge`, 'up');
      await tabTo(page, 'forget');
      const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
      check(outline !== 'none', 'the focused button has no visible focus outline');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#login-card', { state: 'visible', timeout: WAIT_MS });
      check((await activeId(page)) === 'token', 'focus did not return to the token field');
      const stored = await page.evaluate(() => sessionStorage.getItem('branchgate.adminToken'));
      check(stored === null, 'the token is still in sessionStorage after "Forget token"');
      check(await page.isHidden('#app'), 'the dashboard is still shown after "Forget token"');
      await noHorizontalOverflow(page, '375 px, sign-in form');
      const file = path.join(artifacts, 'dashboard-login-phone.png');
      await page.screenshot({ path: file, fullPage: true });
      console.log(`screenshot: ${file}`);
    });

    check(problems.length === 0, `the page reported problems:\n  ${problems.join('\n  ')}`);
    await context.close();
  } finally {
    await browser.close();
  }
}

main().then(() => {
  console.log('dashboard.mjs: all browser checks passed');
}, (e) => {
  console.error(`dashboard.mjs: FAIL in "${current}": ${e.message}`);
  process.exit(1);
});
