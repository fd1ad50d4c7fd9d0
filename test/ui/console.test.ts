import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostRack } from '../ansible/host-rack.js';
import { REPO } from '../central/support.js';
import { checkPrereqs } from '../support/require.js';
import { CHROMIUM, launchOffline, recordedContext, signIn } from './browser.js';
import { startDiscoveredRack } from './discovered-rack.js';

/**
 * The operator console (issue 18) in a real browser against a real central, a real site agent and a
 * machine discovered the real way (test/ui/discovered-rack.ts), plus registered machines so the list
 * pages. Chromium can reach only 127.0.0.1. UL_UI_SCREENSHOTS=1 writes the screenshots of docs/ui.md.
 */
const ready = checkPrereqs('operator console in Chromium', { commands: ['busybox', 'curl'], files: [CHROMIUM] });
const MAC = '52:54:00:18:0a:01';
const REGISTERED = 105;
const SHOTS = process.env.UL_UI_SCREENSHOTS ? join(REPO, 'docs/ui') : undefined;

let rack: HostRack;
let browser: Browser;
let machine: { id: string; name: string; facts: { cpu: { model: string } } };
const tokens = { admin: '', operator: '', viewer: '' };
const requests: string[] = [];

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

/** Finds the discovered machine by its MAC (typed as people do: upper case, dashes) and opens its page. */
async function openByMac(page: Page): Promise<void> {
  await page.getByRole('heading', { name: 'Machines' }).waitFor();
  await page.getByLabel('Search').fill(MAC.toUpperCase().replace(/:/g, '-'));
  const rows = page.locator('table.machines tbody tr');
  await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(1);
  await rows.first().getByRole('link', { name: machine.name }).click();
  await page.getByRole('heading', { name: 'Facts' }).waitFor();
}

describe.skipIf(!ready)('operator console in Chromium', () => {
  beforeAll(async () => {
    rack = await startDiscoveredRack([MAC]);
    const c = rack.central;
    tokens.admin = c.token;
    for (const role of ['operator', 'viewer'] as const) tokens[role] = (await c.request('POST', '/api/v1/tokens', { body: { role, name: `console ${role}` } })).json.token;
    for (let i = 0; i < REGISTERED; i++) {
      const r = await c.request('POST', '/api/v1/machines', { body: { name: `rack-${String(i).padStart(3, '0')}`, site: 'lab', macs: [`52:54:00:19:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`] } });
      expect(r.status, r.text).toBe(201);
    }
    machine = (await c.request('GET', `/api/v1/machines/${rack.machines[0].id}`)).json;
    expect(machine.facts.cpu.model, 'discovery reported facts').toBeTruthy();
    browser = await launchOffline();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await rack?.stop();
  });

  it('signs in with a token, pages 10,000-style lists, finds the discovered machine by MAC and shows its facts, without horizontal overflow at 1280×800', async () => {
    const { context, page } = await recordedContext(browser, requests);
    try {
      await page.goto(`${rack.central.url}/`);
      expect(new URL(page.url()).pathname).toBe('/ui');
      await shot(page, 'sign-in');
      await signIn(page, rack.central.url, tokens.operator);
      await expect.poll(() => page.locator('#machines-count').textContent()).toBe(`1–100 of ${REGISTERED + 1}`);
      expect(await page.locator('table.machines tbody tr').count()).toBe(100); // one page, not every machine
      await shot(page, 'machines');
      await page.getByRole('button', { name: 'Next' }).click();
      await expect.poll(() => page.locator('#machines-count').textContent()).toBe(`101–${REGISTERED + 1} of ${REGISTERED + 1}`);
      await openByMac(page);
      const facts = page.locator('section', { has: page.getByRole('heading', { name: 'Facts' }) });
      await expect.poll(() => facts.textContent()).toContain(machine.facts.cpu.model);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain(machine.name);
      // Its rendered boot files: the discovery environment's iPXE script, with a placeholder boot token.
      const boot = page.locator('section', { has: page.getByRole('heading', { name: /^Boot files/ }) });
      await boot.getByText('boot.ipxe').click();
      await expect.poll(() => boot.locator('pre').first().textContent()).toContain('PREVIEW-boot-token');
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1280);
      // The token is in memory only: nothing in web storage or cookies.
      expect(await page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie])).toEqual([0, 0, '']);
      expect(await context.cookies()).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('starts a run-script on the machine and shows it finishing live, from the change stream (no polling)', async () => {
    const { context, page } = await recordedContext(browser, requests, 'dark');
    try {
      await signIn(page, rack.central.url, tokens.operator);
      await openByMac(page);
      await shot(page, 'machine');
      await expect.poll(() => page.locator('[data-live]').getAttribute('data-live')).toBe('on');
      await page.getByLabel(/^Script/).fill('echo "console-$((6 * 7))"\n');
      await page.getByRole('button', { name: 'Run script' }).click();
      const task = page.locator('.actions .task');
      await task.waitFor();
      const id = await task.getAttribute('data-task');
      await expect.poll(() => task.getAttribute('data-state'), { timeout: 60_000 }).toBe('succeeded');
      expect(await task.locator('pre.output').textContent()).toContain('console-42');
      await shot(page, 'run-script');
      const stored = (await rack.central.request('GET', `/api/v1/tasks/${id}`)).json;
      expect(stored.state).toBe('succeeded');
      // Live: the page followed the stream and fetched the task only when it changed, not on a timer.
      const fetches = requests.filter((u) => new URL(u).pathname === `/api/v1/tasks/${id}`).length;
      expect(requests.some((u) => new URL(u).pathname === '/api/v1/changes/stream')).toBe(true);
      expect(fetches).toBeGreaterThanOrEqual(2);
      expect(fetches).toBeLessThanOrEqual(stored.history.length + 1);
    } finally {
      await context.close();
    }
  }, 90_000);

  it('a viewer sees no action buttons, and the API refuses a forged action from its page', async () => {
    const { context, page } = await recordedContext(browser, requests);
    try {
      await signIn(page, rack.central.url, tokens.viewer);
      await openByMac(page);
      expect(await page.locator('[data-action]').count()).toBe(0);
      expect(await page.getByRole('button', { name: /Run script|Deploy|Release|Start|Send/ }).count()).toBe(0);
      expect(await page.getByRole('heading', { name: 'Actions' }).count()).toBe(0);
      const before = (await rack.central.request('GET', `/api/v1/tasks?machine=${machine.id}`)).json.total;
      const forged = await page.evaluate(async ([token, m]) => {
        const post = (path: string, body: unknown) => fetch(path, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.status);
        return [
          await post('/api/v1/tasks', { site: m.site, machine: m.id, kind: 'run-script', payload: { scriptB64: btoa('touch /tmp/pwned') } }),
          await post(`/api/v1/machines/${m.id}/release`, {}),
          await post(`/api/v1/machines/${m.id}/power`, { action: 'off' }),
        ];
      }, [tokens.viewer, { id: machine.id, site: 'lab' }] as const);
      expect(forged).toEqual([403, 403, 403]);
      expect((await rack.central.request('GET', `/api/v1/tasks?machine=${machine.id}`)).json.total).toBe(before);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('a cross-site form post cannot act: the console holds no cookie, the API answers 401 and nothing changes', async () => {
    const { context, page } = await recordedContext(browser, requests);
    try {
      const state = (await rack.central.request('GET', `/api/v1/machines/${machine.id}`)).json.state;
      await page.setContent(`<form method="post" enctype="text/plain" action="${rack.central.url}/api/v1/machines/${machine.id}/release"><input name='{"wipe":"quick","x":"' value='"}'></form>`);
      const [res] = await Promise.all([page.waitForResponse((r) => r.url().includes('/release')), page.evaluate(() => document.forms[0].submit())]);
      expect([401, 415]).toContain(res.status());
      expect((await rack.central.request('GET', `/api/v1/machines/${machine.id}`)).json.state).toBe(state);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('an admin sees the site with its agent online and creates a join token', async () => {
    const { context, page } = await recordedContext(browser, requests);
    try {
      await signIn(page, rack.central.url, tokens.admin);
      await page.getByRole('link', { name: 'Sites' }).click();
      const site = page.locator('section', { has: page.getByRole('heading', { name: /^lab/ }) });
      await expect.poll(() => site.locator('tbody tr').first().textContent()).toContain('online');
      await site.getByRole('button', { name: 'Create join token' }).click();
      await expect.poll(() => site.getByLabel(/One-time join token/).inputValue()).toMatch(/^ulj1\./);
      await shot(page, 'sites');
      await page.getByRole('link', { name: 'Tasks' }).click();
      await expect.poll(() => page.locator('tbody tr').count()).toBeGreaterThan(0);
      await shot(page, 'tasks');
    } finally {
      await context.close();
    }
  }, 60_000);

  it('works from the keyboard alone, and follows the system’s light or dark scheme', async () => {
    const backgrounds: string[] = [];
    for (const scheme of ['light', 'dark'] as const) {
      const { context, page } = await recordedContext(browser, requests, scheme);
      try {
        await page.goto(`${rack.central.url}/ui`);
        await page.keyboard.press('Tab'); // the token field
        await page.keyboard.type(tokens.viewer);
        await page.keyboard.press('Enter');
        await page.getByRole('navigation', { name: 'Main' }).waitFor();
        await page.keyboard.press('Tab');
        expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Skip to content');
        for (let i = 0; i < 2; i++) await page.keyboard.press('Tab'); // Machines, Sites
        expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Sites');
        await page.keyboard.press('Enter');
        await page.getByRole('heading', { name: 'Sites', level: 1 }).waitFor();
        backgrounds.push(await page.evaluate(() => getComputedStyle(document.body).backgroundColor));
      } finally {
        await context.close();
      }
    }
    expect(backgrounds[0]).not.toBe(backgrounds[1]);
  }, 60_000);

  it('/docs renders Swagger UI offline', async () => {
    const { context, page } = await recordedContext(browser, requests);
    try {
      await page.goto(`${rack.central.url}/docs`);
      await expect.poll(() => page.locator('.swagger-ui .info .title').textContent(), { timeout: 30_000 }).toContain('Underlay central API');
      expect(await page.locator('.opblock').count()).toBeGreaterThan(100);
      await shot(page, 'docs');
    } finally {
      await context.close();
    }
  }, 60_000);

  it('no request of any page left 127.0.0.1', () => {
    expect(requests.length).toBeGreaterThan(30);
    const outside = requests.filter((u) => !u.startsWith('about:') && !u.startsWith('data:') && new URL(u).hostname !== '127.0.0.1');
    expect(outside).toEqual([]);
  });
});
