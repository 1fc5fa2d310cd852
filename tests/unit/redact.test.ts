/** common/redact.ts: credentials and secret query values removed from URLs and from text quoting URLs. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { redactText, redactUrl } from '../../common/redact.js';

describe('redactUrl', () => {
  test('removes the userinfo, keeps the rest as written', () => {
    assert.equal(redactUrl('http://user:s3cr3t@host:8080/b/c'), 'http://***@host:8080/b/c');
    assert.equal(redactUrl('https://tok@files.local'), 'https://***@files.local');
    // The userinfo ends at the last @ of the authority, as URL parsers read it.
    assert.equal(redactUrl('http://u:p@ss@host/x'), 'http://***@host/x');
    assert.equal(redactUrl('http://host/x@y'), 'http://host/x@y', 'an @ in the path is not userinfo');
  });

  test('masks the values of secret-looking query parameters only', () => {
    assert.equal(
      redactUrl('http://h/b?token=abc&v=1&api_key=k&X-Amz-Signature=s&password=p&client_secret=c&sig=z#frag'),
      'http://h/b?token=***&v=1&api_key=***&X-Amz-Signature=***&password=***&client_secret=***&sig=***#frag',
    );
    assert.equal(redactUrl('http://h/b?v=1&name=x'), 'http://h/b?v=1&name=x');
    assert.equal(redactUrl('http://h/b?access%5Ftoken=x'), 'http://h/b?access%5Ftoken=***');
  });

  test('leaves plain URLs and non-URLs alone', () => {
    assert.equal(redactUrl('http://127.0.0.1:9/a.tgz'), 'http://127.0.0.1:9/a.tgz');
    assert.equal(redactUrl('registry.local:5000/team'), 'registry.local:5000/team');
    assert.equal(redactUrl(''), '');
  });
});

describe('redactText', () => {
  test('redacts every URL inside a message', () => {
    const msg =
      'fetching http://a:pw1@h1/x.tgz: HTTP 404; tried "https://b:pw2@h2/y?token=t0k" and http://h3/z?key=k3&q=1';
    const out = redactText(msg);
    for (const secret of ['pw1', 'pw2', 't0k', 'k3']) assert.ok(!out.includes(secret), `${secret} in ${out}`);
    assert.equal(
      out,
      'fetching http://***@h1/x.tgz: HTTP 404; tried "https://***@h2/y?token=***" and http://h3/z?key=***&q=1',
    );
  });

  test('a password holding a quote, as a JSON rendering escapes it, is removed too', () => {
    const out = redactText(`url ${JSON.stringify('http://u:pa"ss@h/a')}: not valid`);
    assert.ok(!out.includes('pa'), out);
    assert.ok(!out.includes('ss@'), out);
  });

  test('text without URLs is unchanged', () => {
    assert.equal(redactText('no url here: user:pass@host'), 'no url here: user:pass@host');
  });
});
