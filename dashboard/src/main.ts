/**
 * The muster dashboard (docs/dashboard.md): the login form, then the shell — navigation, the live
 * indicator, the user and role, light/dark, logout — around the page the URL's hash names:
 * #/ (chassis), #/nodes, #/node/<id>, #/node/<id>/screen, #/exec[/<task>], #/files, #/deploy,
 * #/instances[/<id>], #/alerts, #/history, #/users (admin).
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { LoginReply, WhoAmIReply } from '../../common/api/auth.js';
import { ApiFailure, api, onUnauthorized } from './api.js';
import { live, useLive } from './live.js';
import { can, type Session, session, setSession } from './session.js';
import { ErrorLine, html } from './ui.js';
import { Alerts } from './views/alerts.js';
import { Board } from './views/board.js';
import { Chassis } from './views/chassis.js';
import { Exec } from './views/exec.js';
import { Files } from './views/files.js';
import { History } from './views/history.js';
import { Deploy, Instances } from './views/instances.js';
import { Nodes } from './views/nodes.js';
import { Screen } from './views/screen.js';
import { Users } from './views/users.js';

function Login({ onLogin }: { onLogin: (s: Session) => void }) {
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      const r = await api<LoginReply>('POST', '/login', { username: user, password });
      setPassword('');
      onLogin({ user: r.user, role: r.role });
    } catch (err) {
      setError(err instanceof ApiFailure && err.status === 401 ? new Error('Wrong user name or password.') : err);
    } finally {
      setBusy(false);
    }
  };
  return html`<main class="login">
    <form onSubmit=${submit} aria-labelledby="login-h">
      <h1 id="login-h">muster</h1>
      <p>Log in to the chassis manager.</p>
      <label>User <input name="username" autocomplete="username" required autofocus value=${user} onInput=${(e: Event) => setUser((e.target as HTMLInputElement).value)} /></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required value=${password} onInput=${(e: Event) => setPassword((e.target as HTMLInputElement).value)} /></label>
      <button type="submit" disabled=${busy}>Log in</button>
      <${ErrorLine} error=${error} />
    </form>
  </main>`;
}

/** The page of the hash. */
function route(hash: string) {
  const path = hash.replace(/^#/, '') || '/';
  const board = /^\/node\/([^/]+)$/.exec(path);
  if (board) return html`<${Board} id=${decodeURIComponent(board[1]!)} />`;
  const screen = /^\/node\/([^/]+)\/screen$/.exec(path);
  if (screen) return html`<${Screen} id=${decodeURIComponent(screen[1]!)} />`;
  const exec = /^\/exec(?:\/([A-Za-z0-9_-]{1,64}))?$/.exec(path);
  if (exec) return html`<${Exec} task=${exec[1]} />`;
  const inst = /^\/instances(?:\/([^/]+))?$/.exec(path);
  if (inst) return html`<${Instances} selected=${inst[1] ? decodeURIComponent(inst[1]) : undefined} />`;
  switch (path) {
    case '/files':
      return html`<${Files} />`;
    case '/deploy':
      return html`<${Deploy} />`;
    case '/nodes':
      return html`<${Nodes} />`;
    case '/alerts':
      return html`<${Alerts} />`;
    case '/history':
      return html`<${History} />`;
    case '/users':
      return can('admin') ? html`<${Users} />` : html`<p>Only an admin manages users and tokens.</p>`;
    default:
      return html`<${Chassis} />`;
  }
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const f = () => setHash(location.hash);
    window.addEventListener('hashchange', f);
    return () => window.removeEventListener('hashchange', f);
  }, []);
  return hash;
}

function toggleTheme() {
  const root = document.documentElement;
  const dark = root.dataset.theme ? root.dataset.theme === 'dark' : matchMedia('(prefers-color-scheme: dark)').matches;
  root.dataset.theme = dark ? 'light' : 'dark';
  localStorage.setItem('muster-theme', root.dataset.theme);
}

function LiveIndicator() {
  useLive();
  const s = live.state;
  const text = s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : 'not live: reconnecting…';
  return html`<span class=${`live live-${s}`} role="status" aria-live="polite" id="live-state" data-state=${s}>${text}</span>`;
}

function Shell({ s, onLogout }: { s: Session; onLogout: () => void }) {
  const hash = useHash();
  const path = hash.replace(/^#/, '') || '/';
  const nav: [string, string][] = [
    ['#/', 'Chassis'],
    ['#/nodes', 'Nodes'],
    ['#/exec', 'Exec'],
    ['#/files', 'Files'],
    ...(can('operator') ? ([['#/deploy', 'Deploy']] as [string, string][]) : []),
    ['#/instances', 'Instances'],
    ['#/alerts', 'Alerts'],
    ['#/history', 'History'],
    ...(can('admin') ? ([['#/users', 'Users']] as [string, string][]) : []),
  ];
  return html`<div class="shell">
    <a class="skip" href="#main" onClick=${(e: Event) => {
      e.preventDefault();
      document.getElementById('main')?.focus();
    }}>Skip to content</a>
    <header>
      <span class="brand">muster</span>
      <nav aria-label="pages"><ul>${nav.map(
        ([href, label]) =>
          html`<li key=${href}><a href=${href} aria-current=${(href === '#/' ? path === '/' : path.startsWith(href.slice(1))) ? 'page' : undefined}>${label}</a></li>`,
      )}</ul></nav>
      <${LiveIndicator} />
      <span class="who" id="who">${s.user} (${s.role})</span>
      <button type="button" onClick=${toggleTheme} aria-label="switch light or dark">◐</button>
      <button type="button" onClick=${onLogout} id="logout">Log out</button>
    </header>
    <main id="main" tabindex="-1">${route(hash)}</main>
  </div>`;
}

function App() {
  const [s, setS] = useState<Session | null | undefined>(undefined);
  const login = (x: Session | null) => {
    setSession(x);
    setS(x);
    if (x) live.start();
    else live.stop();
  };
  useEffect(() => {
    api<WhoAmIReply>('GET', '/whoami')
      .then((w) => login({ user: w.user, role: w.role }))
      .catch(() => login(null));
    return onUnauthorized(() => session() && login(null));
  }, []);
  if (s === undefined) return html`<p class="loading">Loading…</p>`;
  if (s === null) return html`<${Login} onLogin=${login} />`;
  return html`<${Shell} s=${s} onLogout=${async () => {
    await api('POST', '/logout').catch(() => undefined);
    login(null);
  }} />`;
}

const saved = localStorage.getItem('muster-theme');
if (saved === 'dark' || saved === 'light') document.documentElement.dataset.theme = saved;
render(html`<${App} />`, document.getElementById('app')!);
