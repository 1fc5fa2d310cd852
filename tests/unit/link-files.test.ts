/**
 * Files and screen over the node link (docs/links.md "Commands over the link"): a linked node's
 * file and screen calls are refused at once as `not_supported` (501, not retried by a push), a
 * multicast node's go to HTTP.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import type { AgentClient, AgentTarget } from '../../manager/agents/client.js';
import { unsupportedFileCalls } from '../../manager/agents/client.js';
import { transient } from '../../manager/files/push.js';
import { LinkAgentClient, RoutingAgentClient } from '../../manager/link/client.js';

const target = (node: string): AgentTarget => ({ node, host_ip: '10.0.0.1', port: 1 });

describe('files over the link', () => {
  it('a linked node answers not_supported (501) for every file and screen call, and a push does not retry it', async () => {
    const link = new LinkAgentClient(
      { call: async () => assert.fail(), execute: async () => assert.fail(), linkOf: () => null } as never,
      {
        deploy_timeout_ms: 1000,
      },
    );
    const body = Readable.from([Buffer.from('x')]);
    const spec = { path: '/srv/a', sha256: '0'.repeat(64), size: 1 };
    const answers = [
      await link.fileOffset(target('n'), spec),
      await link.filePut(target('n'), { ...spec, offset: 0 }, body),
      await link.fileList(target('n'), '/srv'),
      await link.fileGet(target('n'), '/srv/a'),
      await link.fileDelete(target('n'), '/srv/a', false),
      await link.screen(target('n')),
    ];
    for (const a of answers) {
      assert.equal(a.ok, false);
      if (!a.ok) {
        assert.equal(a.status, 501);
        assert.equal(a.error, 'not_supported');
        assert.match(a.message, /WebSocket link/);
        assert.equal(transient(a), false);
      }
    }
    assert.equal(body.destroyed, true, 'the upload body is released');
  });

  it('routes a linked node to the link and a multicast node to HTTP', async () => {
    const seen: string[] = [];
    const mark = (via: string): AgentClient =>
      ({
        ...unsupportedFileCalls(via),
        fileList: async (t: AgentTarget) => {
          seen.push(`${via}:${t.node}`);
          return { ok: true, value: { path: '/srv', entries: [], truncated: false } };
        },
      }) as unknown as AgentClient;
    const r = new RoutingAgentClient(
      mark('http'),
      mark('link'),
      { linkOf: (n: string) => (n === 'linked' ? ({} as never) : null) },
      { nodes: new Map() } as never,
    );
    await r.fileList(target('linked'), '/srv');
    await r.fileList(target('1-1-0'), '/srv');
    assert.deepEqual(seen, ['link:linked', 'http:1-1-0']);
  });
});
