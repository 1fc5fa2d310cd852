/**
 * Debian's Chromium driven by playwright-core for the dashboard's e2e tests (docs/dashboard.md
 * "Tests"): no browser download, the system binary; one place for its path, the skip reason,
 * the launch and the login form.
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ROOT } from './daemons.js';

/** The browser the tests drive (`apt-get install chromium`; scripts/setup-system.sh installs it). */
export const CHROMIUM = '/usr/bin/chromium';

/** Where the dashboard tests leave their screenshots (git-ignored). */
export const DASHBOARD_ARTIFACTS = path.join(ROOT, 'test-artifacts', 'dashboard');

/** The skip reason when Chromium is missing, or false (for `needs`). */
export const missingChromium = (): string | false =>
  !existsSync(CHROMIUM) && `needs ${CHROMIUM} (apt-get install chromium)`;

/** Starts Chromium headless (and makes the screenshot directory). */
export async function launchChromium(): Promise<Browser> {
  mkdirSync(DASHBOARD_ARTIFACTS, { recursive: true });
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** Logs in through the dashboard's form at `base` and waits for the signed-in header. */
export async function login(p: Page, base: string, user: string, password: string): Promise<void> {
  await p.goto(base);
  await p.getByLabel('User').fill(user);
  await p.getByLabel('Password').fill(password);
  await p.getByRole('button', { name: 'Log in' }).click();
  await p.locator('#who').waitFor();
}
