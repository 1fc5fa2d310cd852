/**
 * Link tokens (docs/dashboard.md "Users and tokens", docs/links.md "Link tokens"), admin only, on
 * the users page: the tokens a node presents on the WebSocket node link (GET /api/v1/links/tokens),
 * create one for one node or any (POST; its secret shown once), revoke one (DELETE).
 */
import { useState } from 'preact/hooks';
import type { LinkTokenCreateReply, LinkTokenListReply } from '../../../common/api/links.js';
import { api, get } from '../api.js';
import { ErrorLine, html, Time, useLoad } from '../ui.js';

/** The link tokens section. */
export function LinkTokens() {
  const list = useLoad(() => get<LinkTokenListReply>('/links/tokens'), []);
  const [node, setNode] = useState('');
  const [secret, setSecret] = useState('');
  const [error, setError] = useState<unknown>(null);
  const run = async (fn: () => Promise<unknown>) => {
    try {
      await fn();
      setError(null);
      void list.reload();
    } catch (e) {
      setError(e);
    }
  };
  return html`<section aria-labelledby="link-tokens-h">
    <h2 id="link-tokens-h">Link tokens</h2>
    <p>What a node presents on the WebSocket node link (<code>muster links tokens</code>).</p>
    <${ErrorLine} error=${error || list.error} />
    ${secret ? html`<p class="note" role="status">New link token (shown once, copy it now): <code>${secret}</code></p>` : ''}
    <table class="grid" id="link-tokens"><thead><tr><th>Id</th><th>Node</th><th>Created by</th><th>Created</th><th>Last used</th><th>Action</th></tr></thead>
    <tbody>${(list.data?.tokens ?? []).map(
      (
        t,
      ) => html`<tr key=${t.id}><td><code>${t.id}</code></td><td>${t.node ?? 'any'}</td><td>${t.created_by}</td><td><${Time} at=${t.created_at} /></td><td><${Time} at=${t.last_used_at} /></td>
        <td><button type="button" onClick=${() => window.confirm(`Revoke link token ${t.id}?`) && run(() => api('DELETE', `/links/tokens/${encodeURIComponent(t.id)}`))}>Revoke</button></td></tr>`,
    )}</tbody></table>
    <form class="toolbar" aria-label="create a link token" onSubmit=${(e: Event) => {
      e.preventDefault();
      void run(async () => {
        const r = await api<LinkTokenCreateReply>('POST', '/links/tokens', node.trim() ? { node: node.trim() } : {});
        setSecret(r.token);
        setNode('');
      });
    }}>
      <label>For node <input value=${node} onInput=${(e: Event) => setNode((e.target as HTMLInputElement).value)} placeholder="any" size="12" /></label>
      <button type="submit">Create link token</button>
    </form>
  </section>`;
}
