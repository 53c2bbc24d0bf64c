import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tenantOf, type HasRole as Actor } from '../../src/domain/actor.js';
import { checkAllocation, checkNetwork } from '../../src/domain/invariants.js';
import type { Network, Physnet } from '../../src/domain/types.js';
import { SriovError } from '../../src/host/errors.js';
import { makeNetwork } from '../helpers/inventory.js';

const ADMIN: Actor = { role: 'admin' };
const ACME: Actor = { role: 'tenant:acme' };
const PHYSNETS: Physnet[] = [{ name: 'datacentre', accountingOnly: false, tenantVlans: [] }];
const GLOBEX_100 = makeNetwork({ name: 'globex-net', tenant: 'globex', vlan: 100 });

function refused(fn: () => void, code: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof SriovError && e.code === code && (!message || message.test(e.message)));
}

const check = (n: Network, actor: Actor = ACME, existing: Network[] = []) => checkNetwork(n, actor, PHYSNETS, existing);

describe('checkNetwork', () => {
  it('accepts an ordinary tenant network', () => {
    check(makeNetwork({ vlan: 200, minTxRateMbps: 100, maxTxRateMbps: 1000 }), ACME, [GLOBEX_100]);
  });

  it('gives a (physnet, VLAN) pair to one tenant only, naming the owner to staff and to nobody else', () => {
    refused(() => check(makeNetwork({ vlan: 100 }), ACME, [GLOBEX_100]), 'CONFLICT', /^VLAN 100 on physnet datacentre is taken; choose another VLAN$/);
    assert.throws(
      () => check(makeNetwork({ vlan: 100 }), ACME, [GLOBEX_100]),
      (e: unknown) => e instanceof SriovError && !JSON.stringify(e.toJSON()).includes('globex'),
    );
    refused(() => check(makeNetwork({ vlan: 100 }), ADMIN, [GLOBEX_100]), 'CONFLICT', /is taken by tenant globex \(network /);
  });

  it('lets one tenant reuse its own pair, other physnets reuse the VLAN, and a network be updated', () => {
    const physnets = [...PHYSNETS, { name: 'fabric', accountingOnly: true, tenantVlans: [] }];
    const mine = makeNetwork({ name: 'acme-a', vlan: 100 });
    checkNetwork(makeNetwork({ name: 'acme-b', vlan: 100 }), ACME, physnets, [mine]);
    checkNetwork(makeNetwork({ physnet: 'fabric', vlan: 100 }), ACME, physnets, [GLOBEX_100]);
    check({ ...GLOBEX_100, tenant: 'globex', maxTxRateMbps: 500 }, { role: 'tenant:globex' }, [GLOBEX_100]);
  });

  it('keeps untagged networks, trust on, spoof checking off and 802.1ad tags to admins', () => {
    for (const n of [makeNetwork({ vlan: 0 }), makeNetwork({ trust: true }), makeNetwork({ spoofChk: false }), makeNetwork({ vlanProto: '802.1ad' })]) {
      refused(() => check(n), 'FORBIDDEN');
      refused(() => check(n, { role: 'operator' }), 'FORBIDDEN');
      check(n, ADMIN);
    }
    refused(() => check(makeNetwork({ vlan: 0 })), 'FORBIDDEN', /untagged \(VLAN 0\) networks are admin-only/);
    refused(() => check(makeNetwork({ vlanProto: '802.1ad' })), 'FORBIDDEN', /VLAN protocol 802\.1ad is admin-only/);
  });

  it('refuses an unknown physnet with NOT_FOUND', () => {
    refused(() => check(makeNetwork({ physnet: 'nowhere' }), ADMIN), 'NOT_FOUND', /physnet nowhere/);
  });

  it('refuses negative rates and a guarantee above the ceiling', () => {
    refused(() => check(makeNetwork({ minTxRateMbps: -1 })), 'INVALID_ARGUMENT');
    refused(() => check(makeNetwork({ maxTxRateMbps: -5 })), 'INVALID_ARGUMENT');
    refused(() => check(makeNetwork({ minTxRateMbps: 2000, maxTxRateMbps: 1000 })), 'INVALID_ARGUMENT', /exceeds/);
    check(makeNetwork({ minTxRateMbps: 2000, maxTxRateMbps: 0 }));
  });
});

describe('checkAllocation', () => {
  const acmeTrusted = makeNetwork({ vlan: 300, trust: true });

  it('lets a tenant allocate on its own network, even one an admin made privileged', () => {
    checkAllocation(acmeTrusted, ACME, PHYSNETS, [acmeTrusted]);
    checkAllocation(acmeTrusted, { role: 'operator' }, PHYSNETS, [acmeTrusted]);
    checkAllocation(acmeTrusted, { role: 'agent:h1' }, PHYSNETS, [acmeTrusted]);
  });

  it("refuses a tenant on another tenant's network", () => {
    refused(() => checkAllocation(GLOBEX_100, ACME, PHYSNETS, [GLOBEX_100]), 'FORBIDDEN', /belongs to tenant globex/);
  });

  it('re-checks the physnet and the single owner of the pair', () => {
    refused(() => checkAllocation(acmeTrusted, ACME, [], [acmeTrusted]), 'NOT_FOUND');
    const intruder = makeNetwork({ name: 'x', tenant: 'globex', vlan: 300 });
    refused(() => checkAllocation(acmeTrusted, ACME, PHYSNETS, [acmeTrusted, intruder]), 'CONFLICT');
  });

  it('tenantOf reads tenant roles only', () => {
    assert.equal(tenantOf(ACME), 'acme');
    assert.equal(tenantOf(ADMIN), null);
    assert.equal(tenantOf({ role: 'agent:h1' }), null);
  });
});
