// The --store etcd:// URL and the etcd client options: what is accepted, and that each refusal names its part.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SriovError } from '../../src/host/errors.js';
import { isEtcdUrl, parseEtcdUrl, type EtcdClientOptions } from '../../src/store/etcd/url.js';

function refusal(url: string, options: EtcdClientOptions = {}): string {
  try {
    parseEtcdUrl(url, options);
  } catch (err) {
    assert.ok(err instanceof SriovError, `not a SriovError: ${String(err)}`);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.ok(!err.message.includes('\n'), 'one line');
    return err.message;
  }
  assert.fail(`accepted ${url}`);
}

describe('etcd store URL', () => {
  it('takes several members, default port and prefix', () => {
    assert.deepEqual(parseEtcdUrl('etcd://h1:2379,H2.example.com,198.18.0.3:12379'), {
      endpoints: ['http://h1:2379', 'http://h2.example.com:2379', 'http://198.18.0.3:12379'],
      prefix: '/vfleet/',
      tls: null,
      auth: null,
    });
    assert.deepEqual(parseEtcdUrl('etcd://[::1]:2379,[fd00::2]').endpoints, ['http://[::1]:2379', 'http://[fd00::2]:2379']);
    assert.equal(parseEtcdUrl('ETCD://h1/').prefix, '/vfleet/');
  });

  it('keeps a prefix as /a/b/', () => {
    assert.equal(parseEtcdUrl('etcd://h1:2379/region1').prefix, '/region1/');
    assert.equal(parseEtcdUrl('etcd://h1:2379/vfleet/region-1.a/').prefix, '/vfleet/region-1.a/');
  });

  it('refuses a bad scheme, host, port or prefix, naming the part', () => {
    assert.match(refusal('http://h1:2379'), /scheme "http" is not supported/);
    assert.match(refusal('h1:2379'), /is not a store URL/);
    assert.match(refusal('etcd://h_1:2379'), /bad host "h_1"/);
    assert.match(refusal('etcd://300.1.1.1:2379'), /bad host "300.1.1.1"/);
    assert.match(refusal('etcd://-h:2379'), /bad host "-h"/);
    assert.match(refusal('etcd://[::g]:2379'), /bad host "::g"/);
    assert.match(refusal('etcd://h1:2379,h2:0'), /member 2 of 2 \("h2"\) has a bad port "0"/);
    assert.match(refusal('etcd://h1:65536'), /bad port "65536"/);
    assert.match(refusal('etcd://h1:02379'), /bad port "02379"/);
    assert.match(refusal('etcd://h1:'), /bad port ""/);
    assert.match(refusal('etcd://::1:2379'), /bad host "::1"/, 'an IPv6 address needs brackets');
    assert.match(refusal('etcd://h1:2379,,h2:2379'), /member 2 of 3 is empty/);
    assert.match(refusal('etcd://'), /the member is empty/);
    assert.match(refusal('etcd://h1:2379,H1:2379'), /h1:2379 is listed twice/);
    assert.match(refusal('etcd://h1/a/../b'), /bad prefix "\/a\/..\/b"/);
    assert.match(refusal('etcd://h1/a//b'), /bad prefix/);
    assert.match(refusal('etcd://h1/a%2Fb'), /bad prefix/);
    assert.match(refusal(`etcd://h1/${'a'.repeat(300)}`), /at most 200/);
    assert.match(refusal(`etcd://${Array.from({ length: 33 }, (_, i) => `h${i}`).join(',')}`), /33 endpoints, at most 32/);
  });

  it('refuses credentials, queries and spaces in the URL', () => {
    assert.match(refusal('etcd://root:pw@h1:2379'), /credentials do not belong in the URL \(use --etcd-user/);
    assert.match(refusal('etcd://h1:2379?x=1'), /query or fragment/);
    assert.match(refusal('etcd://h1:2379, h2:2379'), /white space/);
  });

  it('turns to https with a CA, and takes a client certificate and user', () => {
    const t = parseEtcdUrl('etcd://h1:2379', { cacert: '/etc/etcd/ca.crt', cert: '/c.crt', key: '/c.key', user: 'vfleet', passwordFile: '/pw' });
    assert.deepEqual(t.endpoints, ['https://h1:2379']);
    assert.deepEqual(t.tls, { cacert: '/etc/etcd/ca.crt', cert: '/c.crt', key: '/c.key' });
    assert.deepEqual(t.auth, { user: 'vfleet', passwordFile: '/pw' });
    assert.deepEqual(parseEtcdUrl('etcd://h1', { cacert: '/ca' }).tls, { cacert: '/ca' });
  });

  it('refuses TLS and auth options that do not go together', () => {
    assert.match(refusal('etcd://h1', { cert: '/c' }), /--etcd-cert needs --etcd-key/);
    assert.match(refusal('etcd://h1', { key: '/k' }), /--etcd-key needs --etcd-cert/);
    assert.match(refusal('etcd://h1', { cert: '/c', key: '/k' }), /--etcd-cert needs --etcd-cacert/);
    assert.match(refusal('etcd://h1', { user: 'u' }), /--etcd-user needs --etcd-password-file/);
    assert.match(refusal('etcd://h1', { passwordFile: '/pw' }), /--etcd-password-file needs --etcd-user/);
    assert.match(refusal('etcd://h1', { user: 'a b', passwordFile: '/pw' }), /--etcd-user "a b"/);
  });

  it('tells an etcd URL from anything else', () => {
    assert.equal(isEtcdUrl('etcd://h1'), true);
    assert.equal(isEtcdUrl('/var/lib/vfleet'), false);
  });
});
