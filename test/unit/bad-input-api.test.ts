/**
 * The bad-input catalogue of the HTTP API (issue 8): every POST, PUT and
 * DELETE route and the query strings, each case a request that must be
 * refused with a 4xx in the error envelope, in one readable line without
 * a regular expression, and with the store exactly as it was (every table
 * dumped before and after, read from the database file itself).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import type { Allocation } from '../../src/domain/types.js';
import { makeHost } from '../helpers/inventory.js';
import { expectStatus, policyOf, startApi, type ApiHarness, type ErrorBody } from '../helpers/api-harness.js';
import { sriovctl } from '../helpers/cli.js';

type Who = 'admin' | 'operator' | 'alpha' | 'beta' | 'agent';

interface Case {
  what: string;
  who?: Who;
  method: string;
  path: string;
  /** JSON-encoded unless a string (sent as it is). */
  body?: unknown;
  status: number;
  /** What the message must say (the field, the limit). */
  says?: RegExp;
}

const NET = { name: 'n-new', tenant: 'alpha', physnet: 'fabric', vlan: 300 };
const POOL = { cidr: '198.18.0.0/24' };
const ALLOC = { network: 'blue', workload: { kind: 'vm', name: 'vm-new' } };
const CONTAINER = { kind: 'container', netns: '/var/run/netns/pod-x', ifname: 'net1' };
const long = (n: number) => 'a'.repeat(n);
const policy = (extra = '', vfs = 4) => policyOf([['f', 'ens1f0', 'fabric']], vfs) + extra;

const CASES: Case[] = [
  // Tenants
  { what: 'tenant without a name', method: 'POST', path: '/v1/tenants', body: {}, status: 400, says: /needs field "name"/ },
  { what: 'tenant name with upper case', method: 'POST', path: '/v1/tenants', body: { name: 'Not_A_Name' }, status: 400, says: /name must be 1-63 lower-case letters/ },
  { what: 'tenant name of 64 characters', method: 'POST', path: '/v1/tenants', body: { name: long(64) }, status: 400, says: /name must be 1-63/ },
  { what: 'tenant name ending in -', method: 'POST', path: '/v1/tenants', body: { name: 'red-' }, status: 400, says: /name must be/ },
  { what: 'tenant name a number', method: 'POST', path: '/v1/tenants', body: { name: 7 }, status: 400, says: /name must be string/ },
  { what: 'tenant with an unknown field', method: 'POST', path: '/v1/tenants', body: { name: 'red', colour: 'red' }, status: 400, says: /unknown field "colour"/ },
  { what: 'tenant that exists', method: 'POST', path: '/v1/tenants', body: { name: 'alpha' }, status: 409, says: /alpha/ },
  { what: 'tenant by an operator', who: 'operator', method: 'POST', path: '/v1/tenants', body: { name: 'red' }, status: 403 },
  { what: 'tenant by a tenant', who: 'alpha', method: 'POST', path: '/v1/tenants', body: { name: 'red' }, status: 403 },
  { what: 'tenant body not JSON', method: 'POST', path: '/v1/tenants', body: '{"name":', status: 400 },
  { what: 'tenant body an array', method: 'POST', path: '/v1/tenants', body: [], status: 400, says: /body must be object/ },
  { what: 'delete an unknown tenant', method: 'DELETE', path: '/v1/tenants/nobody', status: 404 },
  { what: 'delete a tenant by a bad name', method: 'DELETE', path: '/v1/tenants/Bad_Name', status: 400, says: /URL parameter name must be 1-63/ },
  { what: 'delete a tenant with networks', method: 'DELETE', path: '/v1/tenants/alpha', status: 409 },
  { what: 'delete a tenant as operator', who: 'operator', method: 'DELETE', path: '/v1/tenants/beta', status: 403 },
  { what: 'tenant group with nothing in it', method: 'PUT', path: '/v1/tenants/alpha', body: {}, status: 400, says: /fewer than 1 properties/ },
  { what: 'tenant group of a fraction', method: 'PUT', path: '/v1/tenants/alpha', body: { pfMaxTxRateMbps: 1.5 }, status: 400, says: /integer/ },
  { what: 'tenant group with min above max', method: 'PUT', path: '/v1/tenants/alpha', body: { pfMinTxRateMbps: 300, pfMaxTxRateMbps: 200 }, status: 400, says: /pfMinTxRateMbps 300 exceeds pfMaxTxRateMbps 200/ },
  { what: 'tenant group by a tenant', who: 'alpha', method: 'PUT', path: '/v1/tenants/alpha', body: { pfMaxTxRateMbps: 200 }, status: 403 },
  // Physnets
  { what: 'physnet change with nothing in it', method: 'PUT', path: '/v1/physnets/fabric', body: {}, status: 400, says: /accountingOnly, groupsAccountingOnly, tenantVlans, or several/ },
  { what: 'physnet accountingOnly "yes"', method: 'PUT', path: '/v1/physnets/fabric', body: { accountingOnly: 'yes' }, status: 400, says: /accountingOnly must be boolean/ },
  { what: 'tenant VLAN range from 0', method: 'PUT', path: '/v1/physnets/fabric', body: { tenantVlans: [{ from: 0, to: 10 }] }, status: 400, says: /tenantVlans\.0\.from must be 1-4094, got 0/ },
  { what: 'tenant VLAN range to 4095', method: 'PUT', path: '/v1/physnets/fabric', body: { tenantVlans: [{ from: 10, to: 4095 }] }, status: 400, says: /must be 1-4094, got 4095/ },
  { what: 'tenant VLAN range backwards', method: 'PUT', path: '/v1/physnets/fabric', body: { tenantVlans: [{ from: 20, to: 10 }] }, status: 400, says: /runs backwards/ },
  { what: 'tenant VLAN ranges overlapping', method: 'PUT', path: '/v1/physnets/fabric', body: { tenantVlans: [{ from: 1, to: 10 }, { from: 10, to: 20 }] }, status: 400, says: /overlap/ },
  { what: 'tenant VLAN range without to', method: 'PUT', path: '/v1/physnets/fabric', body: { tenantVlans: [{ from: 1 }] }, status: 400, says: /needs field "to"/ },
  { what: 'tenant VLANs as text', method: 'PUT', path: '/v1/physnets/fabric', body: { tenantVlans: '1000-1999' }, status: 400, says: /tenantVlans must be array/ },
  { what: 'tenant VLANs as 65 ranges', method: 'PUT', path: '/v1/physnets/fabric', body: { tenantVlans: Array.from({ length: 65 }, (_, i) => ({ from: i + 1, to: i + 1 })) }, status: 400, says: /must NOT have more than 64 items/ },
  { what: 'physnet with an unknown field', method: 'PUT', path: '/v1/physnets/fabric', body: { accountingOnly: true, mtu: 9000 }, status: 400, says: /unknown field "mtu"/ },
  { what: 'physnet change by an operator', who: 'operator', method: 'PUT', path: '/v1/physnets/fabric', body: { accountingOnly: true }, status: 403 },
  { what: 'physnet by a bad name', method: 'PUT', path: '/v1/physnets/Fabric', body: { accountingOnly: true }, status: 400, says: /URL parameter name must be/ },
  // Networks
  { what: 'network without a name', method: 'POST', path: '/v1/networks', body: { ...NET, name: undefined }, status: 400, says: /needs field "name"/ },
  { what: 'network without a tenant', method: 'POST', path: '/v1/networks', body: { ...NET, tenant: undefined }, status: 400, says: /needs field "tenant"/ },
  { what: 'network without a physnet', method: 'POST', path: '/v1/networks', body: { ...NET, physnet: undefined }, status: 400, says: /needs field "physnet"/ },
  { what: 'VLAN 4095', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: 4095 }, status: 400, says: /vlan must be 0-4094, got 4095/ },
  { what: 'VLAN -1', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: -1 }, status: 400, says: /vlan must be 0-4094, got -1/ },
  { what: 'VLAN as text', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: '300' }, status: 400, says: /vlan must be integer/ },
  { what: 'VLAN 1.5', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: 1.5 }, status: 400, says: /vlan must be integer/ },
  { what: 'QoS 8', method: 'POST', path: '/v1/networks', body: { ...NET, qos: 8 }, status: 400, says: /qos must be 0-7, got 8/ },
  { what: 'QoS on VLAN 0', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: 0, qos: 3 }, status: 400, says: /qos 3 needs a VLAN/ },
  { what: 'VLAN protocol 802.1x', method: 'POST', path: '/v1/networks', body: { ...NET, vlanProto: '802.1x' }, status: 400, says: /vlanProto must be one of "802.1Q", "802.1ad"/ },
  { what: 'MTU 67', method: 'POST', path: '/v1/networks', body: { ...NET, mtu: 67 }, status: 400, says: /mtu must be 68-65535, got 67/ },
  { what: 'MTU 70000', method: 'POST', path: '/v1/networks', body: { ...NET, mtu: 70000 }, status: 400, says: /mtu must be 68-65535/ },
  { what: 'negative max rate', method: 'POST', path: '/v1/networks', body: { ...NET, maxTxRateMbps: -1 }, status: 400, says: /maxTxRateMbps must be 0-400000/ },
  { what: 'max rate above 400G', method: 'POST', path: '/v1/networks', body: { ...NET, maxTxRateMbps: 500_000 }, status: 400, says: /maxTxRateMbps must be 0-400000/ },
  { what: 'max rate above the link', method: 'POST', path: '/v1/networks', body: { ...NET, maxTxRateMbps: 200_000 }, status: 400, says: /exceeds the 100000 Mbps link/ },
  { what: 'min rate above max rate', method: 'POST', path: '/v1/networks', body: { ...NET, minTxRateMbps: 2000, maxTxRateMbps: 1000 }, status: 400, says: /minTxRateMbps 2000 exceeds maxTxRateMbps 1000/ },
  { what: 'device type nic', method: 'POST', path: '/v1/networks', body: { ...NET, deviceType: 'nic' }, status: 400, says: /deviceType must be one of "netdevice", "vfio-pci"/ },
  { what: 'network name with a dot', method: 'POST', path: '/v1/networks', body: { ...NET, name: 'a.b' }, status: 400, says: /name must be 1-63/ },
  { what: 'network with an unknown field', method: 'POST', path: '/v1/networks', body: { ...NET, colour: 'red' }, status: 400, says: /unknown field "colour"/ },
  { what: 'network of an unknown tenant', method: 'POST', path: '/v1/networks', body: { ...NET, tenant: 'nobody' }, status: 404 },
  { what: 'network on an unknown physnet', method: 'POST', path: '/v1/networks', body: { ...NET, physnet: 'nowhere' }, status: 404 },
  { what: 'network that exists', method: 'POST', path: '/v1/networks', body: { ...NET, name: 'blue' }, status: 409 },
  { what: 'another tenant’s VLAN', method: 'POST', path: '/v1/networks', body: { ...NET, tenant: 'beta', vlan: 100 }, status: 409 },
  { what: 'trust by an operator', who: 'operator', method: 'POST', path: '/v1/networks', body: { ...NET, trust: true }, status: 403 },
  { what: '802.1ad by an operator', who: 'operator', method: 'POST', path: '/v1/networks', body: { ...NET, vlanProto: '802.1ad' }, status: 403, says: /802\.1ad is admin-only/ },
  { what: 'spoof check off by an operator', who: 'operator', method: 'POST', path: '/v1/networks', body: { ...NET, spoofChk: false }, status: 403 },
  { what: 'VLAN 0 by an operator', who: 'operator', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: 0 }, status: 403 },
  { what: 'a VLAN picked by a tenant', who: 'alpha', method: 'POST', path: '/v1/networks', body: NET, status: 403, says: /only an admin or operator may pick a VLAN/ },
  { what: 'no VLAN and no tenant ranges', who: 'alpha', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: undefined }, status: 400, says: /no tenant VLAN ranges/ },
  { what: 'a network for another tenant', who: 'beta', method: 'POST', path: '/v1/networks', body: { ...NET, vlan: undefined }, status: 404 },
  { what: 'pool 0.0.0.0/0', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { cidr: '0.0.0.0/0' } }, status: 400, says: /\/8 to \/30/ },
  { what: 'pool /31', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { cidr: '198.18.0.0/31' } }, status: 400, says: /\/8 to \/30/ },
  { what: 'pool not a CIDR', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { cidr: 'lots' } }, status: 400, says: /ipam\.cidr must be an IPv4 address with prefix length/ },
  { what: 'pool with host bits', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { cidr: '198.18.0.5/24' } }, status: 400, says: /host bits/ },
  { what: 'pool octet 300', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { cidr: '198.18.0.300/24' } }, status: 400, says: /not an IPv4/ },
  { what: 'pool range outside', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, rangeStart: '198.19.0.10' } }, status: 400, says: /outside/ },
  { what: 'pool gateway outside', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, gateway: '198.19.0.1' } }, status: 400, says: /gateway 198\.19\.0\.1 is outside/ },
  { what: 'route gateway off the subnet', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, routes: [{ dst: 'default', gw: '198.19.0.1' }] } }, status: 400, says: /route gateway/ },
  { what: 'route destination with host bits', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, routes: [{ dst: '198.19.1.1/16' }] } }, status: 400, says: /host bits/ },
  { what: 'route destination not a CIDR', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, routes: [{ dst: 'everywhere' }] } }, status: 400 },
  { what: 'route gateway not an address', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, routes: [{ dst: 'default', gw: 'router' }] } }, status: 400, says: /gw must be an IPv4 address/ },
  { what: 'pool with an unknown field', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, dns: '198.18.0.1' } }, status: 400, says: /unknown field "dns"/ },
  { what: 'delete an unknown network', method: 'DELETE', path: '/v1/networks/nothing', status: 404 },
  { what: 'delete a network with allocations', method: 'DELETE', path: '/v1/networks/blue', status: 409 },
  { what: 'delete another tenant’s network', who: 'beta', method: 'DELETE', path: '/v1/networks/blue', status: 404 },
  { what: 'delete a network by a bad name', method: 'DELETE', path: '/v1/networks/BLUE', status: 400, says: /URL parameter name/ },
  { what: 'delete networks as an agent', who: 'agent', method: 'DELETE', path: '/v1/networks/blue', status: 403 },
  // Node policies
  { what: 'policy without a document', method: 'PUT', path: '/v1/hosts/host-1/policy', body: {}, status: 400, says: /needs field "document"/ },
  { what: 'policy whose policies are not a list', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: 'policies: 7' }, status: 400, says: /policies/ },
  { what: 'policy numVfs 257', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: policy('', 257) }, status: 400, says: /numVfs 257 is above ens1f0's sriov_totalvfs of 8/ },
  { what: 'policy with an unknown field', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: policy('    colour: red\n') }, status: 400, says: /colour/ },
  { what: 'policy with trust on, by an operator', who: 'operator', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: policy('    vfs:\n      "0": { trust: on }\n') }, status: 403, says: /admin-only/ },
  { what: 'policy with spoofChk off, by an operator', who: 'operator', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: policy('    vfs:\n      "1-2": { spoofChk: off }\n') }, status: 403 },
  { what: 'policy by a tenant', who: 'alpha', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: policy() }, status: 403 },
  { what: 'policy for a bad host name', method: 'PUT', path: '/v1/hosts/Host_1/policy', body: { document: policy() }, status: 400, says: /URL parameter name must be a lower-case DNS name/ },
  { what: 'policy document a number', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: 7 }, status: 400, says: /document must be string/ },
  { what: 'policy VF settings beyond numVfs', method: 'PUT', path: '/v1/hosts/host-1/policy', body: { document: policy('    vfs:\n      "7": { qos: 1 }\n') }, status: 400 },
  { what: 'reconcile an unknown host', method: 'POST', path: '/v1/hosts/nowhere/reconcile', status: 404 },
  // Allocations
  { what: 'allocation without a network', method: 'POST', path: '/v1/allocations', body: { workload: ALLOC.workload }, status: 400, says: /needs field "network"/ },
  { what: 'allocation without a workload', method: 'POST', path: '/v1/allocations', body: { network: 'blue' }, status: 400, says: /needs field "workload"/ },
  { what: 'workload kind pod', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, workload: { kind: 'pod', name: 'x' } }, status: 400, says: /workload\.kind must be one of "container", "vm"/ },
  { what: 'workload name with a space', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, workload: { kind: 'vm', name: 'my vm' } }, status: 400, says: /workload\.name must be 1-253 letters/ },
  { what: 'NUMA node 64', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, numaNode: 64 }, status: 400, says: /numaNode must be 0-63, got 64/ },
  { what: 'numaPolicy without numaNode', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, numaPolicy: 'preferred' }, status: 400, says: /numaPolicy" needs field "numaNode"/ },
  { what: 'numaPolicy strict', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, numaNode: 0, numaPolicy: 'strict' }, status: 400, says: /must be one of "required", "preferred"/ },
  { what: 'placement policy random', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, policy: 'random' }, status: 400, says: /must be one of "pack", "spread"/ },
  { what: 'pinned host with a bad name', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, host: 'Host 1' }, status: 400, says: /host must be a lower-case DNS name/ },
  { what: 'MAC with 5 octets', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, mac: '02:00:00:00:01' }, status: 400, says: /mac must be a MAC address like/ },
  { what: 'MAC multicast', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, mac: '01:00:5e:00:00:01' }, status: 400 },
  { what: 'PCI address in upper case', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, host: 'host-1', pciAddress: '0000:3B:00.1' }, status: 400, says: /pciAddress must be a PCI address like/ },
  { what: 'attach kind pod', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, attach: { kind: 'pod' } }, status: 400, says: /attach field "kind" must be one of "container", "vm", got "pod"/ },
  { what: 'VM attach without a domain', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, attach: { kind: 'vm' } }, status: 400, says: /attach needs field "vm"/ },
  { what: 'delete a token by a bad id', method: 'DELETE', path: '/v1/tokens/bad%20id', status: 400, says: /id must be a token id/ },
  { what: 'container attach for a VM', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, attach: CONTAINER }, status: 400 },
  { what: 'netns path relative', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, workload: { kind: 'container', name: 'c' }, attach: { ...CONTAINER, netns: 'run/netns/x' } }, status: 400 },
  { what: 'ifname of 16 characters', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, workload: { kind: 'container', name: 'c' }, attach: { ...CONTAINER, ifname: long(16) } }, status: 400 },
  { what: 'attach address outside the pool', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, workload: { kind: 'container', name: 'c' }, attach: { ...CONTAINER, ips: ['198.19.0.5/24'] } }, status: 400, says: /outside the pool/ },
  { what: 'allocation on an unknown network', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, network: 'nothing' }, status: 404 },
  { what: 'allocation on another tenant’s network', who: 'beta', method: 'POST', path: '/v1/allocations', body: ALLOC, status: 404 },
  { what: 'allocation with a group holding a newline', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, group: 'x\n\u001b[31mforged' }, status: 400, says: /group must be 1-253 letters, digits, '_', '.' and '-'/ },
  { what: 'allocation with a long unknown field holding a newline', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, [`x\n\u001b[31mforged${'y'.repeat(2000)}`]: 1 }, status: 400, says: /^body has unknown field "x\\n\\u001b\[31mforged/ },
  { what: 'allocations by an unknown filter holding a newline', method: 'GET', path: '/v1/allocations?a%0Ab=1', status: 400, says: /^query parameter has unknown field "a\\nb"$/ },
  { what: 'route destination holding a newline', method: 'POST', path: '/v1/networks', body: { ...NET, ipam: { ...POOL, routes: [{ dst: '198.18.9.0/24\n\u001b[31mforged' }] } }, status: 400, says: /^"198\.18\.9\.0\/24\\n\\u001b\[31mforged" is not an IPv4 CIDR/ },
  { what: 'allocation with an empty group', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, group: '' }, status: 400, says: /group must be 1-253 characters long/ },
  { what: 'allocation with an unknown field', method: 'POST', path: '/v1/allocations', body: { ...ALLOC, colour: 'red' }, status: 400, says: /unknown field "colour"/ },
  { what: 'allocation by an agent', who: 'agent', method: 'POST', path: '/v1/allocations', body: ALLOC, status: 403 },
  { what: 'delete an unknown allocation', method: 'DELETE', path: '/v1/allocations/0123abcd-0000-4000-8000-000000000000', status: 404 },
  { what: 'delete by a 3-digit prefix', method: 'DELETE', path: '/v1/allocations/abc', status: 404 },
  { what: 'delete another tenant’s allocation', who: 'beta', method: 'DELETE', path: '/v1/allocations/{held}', status: 404 },
  { what: 'delete by an id longer than any', method: 'DELETE', path: `/v1/allocations/${long(80)}`, status: 400, says: /URL parameter id must be 1-64 characters long/ },
  { what: 'delete by a 200-character path segment', method: 'DELETE', path: `/v1/allocations/${long(200)}`, status: 414, says: /longer than 100 characters/ },
  { what: 'an allocation id with a newline', method: 'GET', path: '/v1/allocations/%0aforged', status: 400, says: /URL parameter id must be an allocation id or a unique prefix of it, in printable ASCII, got "\\nforged"/ },
  { what: 'an allocation id with an escape sequence', method: 'DELETE', path: '/v1/allocations/%1b%5b31m', status: 400, says: /URL parameter id must be an allocation id/ },
  { what: 'a URL that does not decode', method: 'DELETE', path: '/v1/allocations/%E0%A4%A', status: 400, says: /does not decode/ },
  // Tokens
  { what: 'token for role root', method: 'POST', path: '/v1/tokens', body: { role: 'root' }, status: 400, says: /role must be admin, operator, tenant:NAME, node:HOST or agent:HOST/ },
  { what: 'token with an unknown field', method: 'POST', path: '/v1/tokens', body: { role: 'admin', ttl: 5 }, status: 400, says: /unknown field "ttl"/ },
  { what: 'delete an unknown token', method: 'DELETE', path: '/v1/tokens/nothing', status: 404 },
  // Agent reports
  { what: 'report without pfs', who: 'agent', method: 'POST', path: '/v1/agent/report', body: { inventory: { hostname: 'host-1' } }, status: 400, says: /inventory needs field "pfs"/ },
  { what: 'report by a tenant', who: 'alpha', method: 'POST', path: '/v1/agent/report', body: { inventory: { hostname: 'host-1', pfs: [] } }, status: 403 },
  { what: 'report for another host', who: 'agent', method: 'POST', path: '/v1/agent/report', body: { inventory: { hostname: 'host-2', pfs: [] } }, status: 403 },
  // Query strings
  { what: 'allocations by a bad host', method: 'GET', path: '/v1/allocations?host=Host_1', status: 400, says: /query parameter host must be a lower-case DNS name/ },
  { what: 'allocations by a bad network', method: 'GET', path: '/v1/allocations?network=Blue', status: 400, says: /query parameter network must be 1-63/ },
  { what: 'allocations by an unknown filter', method: 'GET', path: '/v1/allocations?colour=red', status: 400, says: /unknown field "colour"/ },
  { what: 'allocations by a long ifname', method: 'GET', path: `/v1/allocations?ifname=${long(16)}`, status: 400, says: /ifname must be an interface name/ },
  { what: 'events with limit "lots"', method: 'GET', path: '/v1/events?limit=lots', status: 400, says: /query parameter limit must be a whole number/ },
  { what: 'events after -1', method: 'GET', path: '/v1/events?after=-1', status: 400, says: /query parameter after must be a whole number/ },
  { what: 'events with limit 1e3', method: 'GET', path: '/v1/events?limit=1e3', status: 400, says: /decimal digits/ },
  { what: 'events by an unknown filter', method: 'GET', path: '/v1/events?actor=me', status: 400, says: /unknown field "actor"/ },
  { what: 'desired state without a host', who: 'agent', method: 'GET', path: '/v1/agent/desired', status: 400 },
];

/** Every table's rows, in order, from the database file: the store's whole state. */
function dump(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all() as string[];
    return JSON.stringify(Object.fromEntries(tables.map((t) => [t, db.prepare(`SELECT * FROM "${t}" ORDER BY rowid`).all()])));
  } finally {
    db.close();
  }
}

describe('bad input to the API: refused, explained, nothing stored', () => {
  let h: ApiHarness;
  const tokens = {} as Record<Who, string>;
  let held: Allocation;

  before(async () => {
    h = await startApi();
    for (const name of ['alpha', 'beta']) await expectStatus(h.call(h.admin, 'POST', '/v1/tenants', { name }), 201);
    tokens.admin = h.admin;
    tokens.operator = await h.token('operator');
    tokens.alpha = await h.token('tenant:alpha');
    tokens.beta = await h.token('tenant:beta');
    tokens.agent = await h.token('agent:host-1');
    await h.control.hosts.report({ id: 'local', role: 'admin' }, makeHost({ name: 'host-1', pfs: 1, vfs: 8, linkSpeedMbps: 100_000, physnet: null }).inventory);
    await expectStatus(h.call(h.admin, 'PUT', '/v1/hosts/host-1/policy', { document: policy('', 8) }), 200);
    await expectStatus(h.call(h.admin, 'POST', '/v1/networks', { name: 'blue', tenant: 'alpha', physnet: 'fabric', vlan: 100, ipam: POOL }), 201);
    held = (await expectStatus(h.call<Allocation>(tokens.alpha, 'POST', '/v1/allocations', ALLOC), 201)).body;
  });
  after(() => h.close());

  it(`has at least 80 cases over every POST, PUT and DELETE route`, () => {
    assert.ok(CASES.length >= 80, `${CASES.length} cases`);
    for (const route of ['POST /v1/tenants', 'DELETE /v1/tenants/', 'PUT /v1/physnets/', 'POST /v1/networks', 'DELETE /v1/networks/', 'PUT /v1/hosts/', 'POST /v1/hosts/', 'POST /v1/allocations', 'DELETE /v1/allocations/', 'POST /v1/tokens', 'DELETE /v1/tokens/', 'POST /v1/agent/report']) {
      assert.ok(CASES.some((c) => `${c.method} ${c.path}`.startsWith(route)), route);
    }
  });

  it('headers over 16 KB: 431 in the error envelope, not Fastify’s own format', async () => {
    const file = join(h.dir, 'vfleet.db');
    const before = dump(file);
    const r = await fetch(`${h.base}/v1/networks`, { headers: { authorization: `Bearer ${'x'.repeat(20_000)}` } });
    assert.equal(r.status, 431);
    const body = (await r.json()) as ErrorBody;
    assert.equal(body.error.code, 'INVALID_ARGUMENT');
    assert.match(body.error.message, /^the request headers are larger than 16 KB/);
    assert.equal(dump(file), before);
  });

  for (const c of CASES) {
    it(`${c.what}: ${c.status}`, async () => {
      const file = join(h.dir, 'vfleet.db');
      const before = dump(file);
      const r = await h.call<ErrorBody>(tokens[c.who ?? 'admin'], c.method, c.path.replace('{held}', held.id), c.body);
      assert.equal(r.status, c.status, `${c.method} ${c.path}: ${r.text}`);
      assert.equal(typeof r.body?.error?.code, 'string', `error envelope: ${r.text}`);
      const message = r.body.error.message;
      assert.equal(typeof message, 'string');
      assert.ok(!message.includes('\n') && message.length <= 300, `one short line: ${message}`);
      assert.doesNotMatch(message, /\^|\[a-z|\\d|\$\/|must match pattern/, `no regular expression: ${message}`);
      if (c.says) assert.match(message, c.says);
      assert.equal(dump(file), before, 'the store is unchanged');
    });
  }
});

describe('bad input to the remote CLI: exit 2, no request made', () => {
  // An unreachable server would make any request exit 1: exit 2 shows the CLI refused before asking.
  const cli = (args: string[]) => sriovctl([...args, '--server', 'http://127.0.0.1:1'], { HOME: '/nonexistent', SRIOV_CONFIG: '', SRIOV_TOKEN: 'vfl_x' });
  for (const [what, args, says] of [
    ['network VLAN 4095', ['network', 'create', 'n', '--tenant', 't', '--physnet', 'p', '--vlan', '4095'], /VLAN/],
    ['network route without a pool', ['network', 'create', 'n', '--tenant', 't', '--physnet', 'p', '--route', 'default@198.18.0.1'], /need --ip-pool/],
    ['physnet tenant VLANs backwards', ['physnet', 'set', 'p', '--tenant-vlans', '20-10'], /runs backwards/],
    ['physnet set without a setting', ['physnet', 'set', 'p'], /needs --accounting-only, --groups-accounting-only or --tenant-vlans/],
    ['alloc create --numa-policy without --numa', ['alloc', 'create', '--network', 'n', '--workload', 'w', '--numa-policy', 'preferred'], /needs --numa/],
  ] as const) {
    it(what, async () => {
      const r = await cli([...args]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, says);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    });
  }
});
