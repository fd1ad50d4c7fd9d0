import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium (installed by .ci/run); playwright-core drives it, no browser download. */
export const CHROMIUM = '/usr/lib/chromium/chromium';

/**
 * Headless Chromium that can reach only 127.0.0.1: every other host name resolves to nothing, so a page
 * that needed the internet (a CDN script, a font, a validator) would visibly fail.
 */
export function launchOffline(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
  });
}

/** A context at 1280×800 whose every request URL is recorded in `log`. */
export async function recordedContext(browser: Browser, log: string[], colorScheme: 'light' | 'dark' = 'light'): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, colorScheme });
  context.on('request', (r) => log.push(r.url()));
  const page = await context.newPage();
  return { context, page };
}

/** Signs in on the console's page with a token (typed into the form, as an operator would). */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}
