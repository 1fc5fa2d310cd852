/**
 * Users and API tokens (docs/dashboard.md "Users and tokens", admin only): add a user, change a
 * role, remove a user; create a token (its secret shown once) and revoke one. Passwords are
 * changed with `muster users passwd` or here by an admin.
 */
import { useState } from 'preact/hooks';
import type { TokenCreateReply, TokenView, UserView } from '../../../common/api/auth.js';
import { api, get } from '../api.js';
import { ErrorLine, html, Time, useLoad } from '../ui.js';
import { LinkTokens } from './link-tokens.js';

const ROLES = ['viewer', 'operator', 'admin'];

/** The users and tokens page. */
export function Users() {
  const users = useLoad(() => get<{ users: UserView[] }>('/users'), []);
  const tokens = useLoad(() => get<{ tokens: TokenView[] }>('/tokens'), []);
  const [error, setError] = useState<unknown>(null);
  const [nu, setNu] = useState({ username: '', password: '', role: 'viewer' });
  const [nt, setNt] = useState({ name: '', role: 'viewer', days: '' });
  const [secret, setSecret] = useState('');
  const run = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      setError(null);
      void users.reload();
      void tokens.reload();
    } catch (e) {
      setError(e);
    }
  };
  return html`<section aria-labelledby="users-h">
    <h1 id="users-h">Users and tokens</h1>
    <${ErrorLine} error=${error || users.error || tokens.error} />
    <h2>Users</h2>
    <table class="grid" id="users"><thead><tr><th>Name</th><th>Role</th><th>Created</th><th>Action</th></tr></thead>
    <tbody>${(users.data?.users ?? []).map(
      (u) => html`<tr key=${u.name}><td>${u.name}</td>
        <td><label class="sr-only" for=${`role-${u.name}`}>role of ${u.name}</label><select id=${`role-${u.name}`} value=${u.role} onChange=${(e: Event) => run(() => api('PUT', `/users/${encodeURIComponent(u.name)}/role`, { role: (e.target as HTMLSelectElement).value }))}>${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></td>
        <td><${Time} at=${u.created_at} /></td>
        <td><button type="button" onClick=${() => window.confirm(`Remove user ${u.name}?`) && run(() => api('DELETE', `/users/${encodeURIComponent(u.name)}`))}>Remove</button>
        <button type="button" onClick=${() => {
          const p = window.prompt(`New password for ${u.name} (8 characters or more)`);
          if (p) void run(() => api('PUT', `/users/${encodeURIComponent(u.name)}/password`, { password: p }));
        }}>Set password</button></td></tr>`,
    )}</tbody></table>
    <form class="toolbar" onSubmit=${(e: Event) => {
      e.preventDefault();
      void run(async () => {
        await api('POST', '/users', nu);
        setNu({ username: '', password: '', role: 'viewer' });
      });
    }} aria-label="add a user">
      <label>Name <input required value=${nu.username} onInput=${(e: Event) => setNu({ ...nu, username: (e.target as HTMLInputElement).value })} /></label>
      <label>Password <input required type="password" minlength="8" autocomplete="new-password" value=${nu.password} onInput=${(e: Event) => setNu({ ...nu, password: (e.target as HTMLInputElement).value })} /></label>
      <label>Role <select value=${nu.role} onChange=${(e: Event) => setNu({ ...nu, role: (e.target as HTMLSelectElement).value })}>${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
      <button type="submit">Add user</button>
    </form>
    <h2>API tokens</h2>
    ${secret ? html`<p class="note" role="status">New token (shown once, copy it now): <code>${secret}</code></p>` : ''}
    <table class="grid" id="tokens"><thead><tr><th>Name</th><th>Prefix</th><th>Role</th><th>User</th><th>Created</th><th>Expires</th><th>Last used</th><th>Action</th></tr></thead>
    <tbody>${(tokens.data?.tokens ?? []).map(
      (
        t,
      ) => html`<tr key=${t.name}><td>${t.name}</td><td><code>${t.prefix}</code></td><td>${t.role}</td><td>${t.user}</td><td><${Time} at=${t.created_at} /></td><td>${t.expires_at ? html`<${Time} at=${t.expires_at} />` : 'never'}</td><td><${Time} at=${t.last_used_at} /></td>
        <td><button type="button" onClick=${() => window.confirm(`Revoke token ${t.name}?`) && run(() => api('DELETE', `/tokens/${encodeURIComponent(t.name)}`))}>Revoke</button></td></tr>`,
    )}</tbody></table>
    <form class="toolbar" onSubmit=${(e: Event) => {
      e.preventDefault();
      void run(async () => {
        const r = await api<TokenCreateReply>('POST', '/tokens', {
          name: nt.name,
          role: nt.role,
          ...(nt.days ? { expires_in_ms: Math.round(Number(nt.days) * 86_400_000) } : {}),
        });
        setSecret(r.token);
        setNt({ name: '', role: 'viewer', days: '' });
      });
    }} aria-label="create a token">
      <label>Name <input required value=${nt.name} onInput=${(e: Event) => setNt({ ...nt, name: (e.target as HTMLInputElement).value })} /></label>
      <label>Role <select value=${nt.role} onChange=${(e: Event) => setNt({ ...nt, role: (e.target as HTMLSelectElement).value })}>${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
      <label>Expires in (days) <input type="number" min="1" value=${nt.days} onInput=${(e: Event) => setNt({ ...nt, days: (e.target as HTMLInputElement).value })} placeholder="never" /></label>
      <button type="submit">Create token</button>
    </form>
    <${LinkTokens} />
  </section>`;
}
