/**
 * Networks: list, create, change and delete. A tenant sees and changes its
 * own; VLAN choice and admin-only settings are offered only to who may use
 * them, and the API's refusals land at their field.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ConfirmDialog, useConfirmation } from '../forms/confirm.js';
import { CheckField, FormFailure, SelectField, TextField, useFocusOn, useForm, type Values } from '../forms/form.js';
import { ALL, useGet } from '../components/use-api.js';
import { ErrorNote } from '../components/ui.js';
import { useWho } from '../session.js';

export interface Network {
  name: string;
  tenant: string;
  physnet: string;
  vlan: number;
  qos: number;
  vlanProto: string;
  mtu: number | null;
  spoofChk: boolean;
  trust: boolean;
  maxTxRateMbps: number;
  minTxRateMbps: number;
  deviceType: string;
  ipam: { cidr: string } | null;
}

interface NetValues extends Values {
  name: string;
  tenant: string;
  physnet: string;
  vlan: string;
  qos: string;
  vlanProto: string;
  mtu: string;
  maxTxRateMbps: string;
  minTxRateMbps: string;
  spoofChk: boolean;
  trust: boolean;
  deviceType: string;
  ipam: string;
}

const BLANK: NetValues = { name: '', tenant: '', physnet: '', vlan: '', qos: '0', vlanProto: '802.1Q', mtu: '', maxTxRateMbps: '0', minTxRateMbps: '0', spoofChk: true, trust: false, deviceType: 'netdevice', ipam: '' };

function valuesOf(n: Network): NetValues {
  return {
    name: n.name,
    tenant: n.tenant,
    physnet: n.physnet,
    vlan: String(n.vlan),
    qos: String(n.qos),
    vlanProto: n.vlanProto,
    mtu: n.mtu === null ? '' : String(n.mtu),
    maxTxRateMbps: String(n.maxTxRateMbps),
    minTxRateMbps: String(n.minTxRateMbps),
    spoofChk: n.spoofChk,
    trust: n.trust,
    deviceType: n.deviceType,
    ipam: n.ipam?.cidr ?? '',
  };
}

/**
 * The body for the API: numbers as numbers (a field that is not one goes as
 * typed, so the API names it), empty optional fields left out; for a change,
 * only what differs from `before`.
 */
function bodyOf(v: NetValues, before?: NetValues): Record<string, unknown> {
  const num = (s: string) => (/^-?[0-9]+$/.test(s.trim()) ? Number(s.trim()) : s);
  const all: Record<string, unknown> = {
    name: v.name.trim(),
    tenant: v.tenant,
    physnet: v.physnet.trim(),
    vlan: v.vlan.trim() === '' ? undefined : num(v.vlan),
    qos: num(v.qos),
    vlanProto: v.vlanProto,
    mtu: v.mtu.trim() === '' ? (before ? null : undefined) : num(v.mtu),
    maxTxRateMbps: num(v.maxTxRateMbps),
    minTxRateMbps: num(v.minTxRateMbps),
    spoofChk: v.spoofChk,
    trust: v.trust,
    deviceType: v.deviceType,
    ipam: v.ipam.trim() === '' ? (before ? null : undefined) : { cidr: v.ipam.trim() },
  };
  const changed = Object.entries(all).filter(([k, value]) => value !== undefined && (!before || v[k] !== before[k]));
  if (before) return Object.fromEntries(changed.filter(([k]) => k !== 'name' && k !== 'tenant'));
  return Object.fromEntries(changed);
}

export function NetworksPage() {
  const who = useWho();
  const networks = useGet<Network[]>(`/v1/networks${ALL}`);
  const tenants = useGet<Array<{ name: string }>>(`/v1/tenants${ALL}`);
  // Tenants may not list physnets: they pick from the physnets their networks are on.
  const physnets = useGet<Array<{ name: string }>>(who.isStaff ? `/v1/physnets${ALL}` : null);
  const [editing, setEditing] = useState<Network | 'new' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const del = useConfirmation<Network>();
  const physnetNames = [...new Set([...(physnets.data ?? []).map((p) => p.name), ...(networks.data ?? []).map((n) => n.physnet)])].sort();

  const done = (message: string) => {
    setEditing(null);
    setNotice(message);
    networks.reload();
  };
  return (
    <>
      <h1>Networks</h1>
      <p class="hint">A network is a tenant’s VLAN on a physical network, with the settings its VFs get.</p>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {editing === null && (
        <div class="toolbar">
          <button type="button" class="primary" onClick={() => (setNotice(null), setEditing('new'))}>
            New network
          </button>
        </div>
      )}
      {editing !== null && (
        <NetworkForm
          key={editing === 'new' ? '' : editing.name}
          network={editing === 'new' ? null : editing}
          tenants={(tenants.data ?? []).map((t) => t.name)}
          physnets={physnetNames}
          onDone={done}
          onCancel={() => setEditing(null)}
        />
      )}
      <ErrorNote error={networks.error} />
      {networks.data && (
        <div class="table-wrap">
          <table class="list">
            <caption class="visually-hidden">Networks</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Tenant</th>
                <th scope="col">Physnet</th>
                <th scope="col" class="num">VLAN</th>
                <th scope="col" class="num">Min/max Mbps</th>
                <th scope="col" class="num">MTU</th>
                <th scope="col">Settings</th>
                <th scope="col">IP pool</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {networks.data.map((n) => (
                <tr key={n.name}>
                  <th scope="row">{n.name}</th>
                  <td>{n.tenant}</td>
                  <td>{n.physnet}</td>
                  <td class="num">{n.vlanProto === '802.1ad' ? `${n.vlan} (802.1ad)` : n.vlan}</td>
                  <td class="num">
                    {n.minTxRateMbps}/{n.maxTxRateMbps || '∞'}
                  </td>
                  <td class="num">{n.mtu ?? '—'}</td>
                  <td>{[n.deviceType, n.spoofChk ? null : 'spoof check off', n.trust ? 'trusted' : null, n.qos ? `qos ${n.qos}` : null].filter(Boolean).join(', ')}</td>
                  <td>{n.ipam?.cidr ?? '—'}</td>
                  <td class="row-actions">
                    <button type="button" onClick={() => (setNotice(null), setEditing(n))} aria-label={`Edit network ${n.name}`}>
                      Edit
                    </button>
                    <button type="button" class="danger" onClick={() => del.ask(n)} aria-label={`Delete network ${n.name}`}>
                      Delete
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {networks.data.length === 0 && <p>No networks yet.</p>}
        </div>
      )}
      <ConfirmDialog
        c={del}
        title={(n) => `Delete network ${n.name}?`}
        body={(n) => (
          <p>
            Network <strong>{n.name}</strong> of tenant {n.tenant} (VLAN {n.vlan} on {n.physnet}) will be deleted. The API refuses while allocations still hold its VFs.
          </p>
        )}
        confirmLabel="Delete network"
        run={async (n) => {
          await api.del(`/v1/networks/${encodeURIComponent(n.name)}`);
          done(`Network ${n.name} deleted.`);
        }}
      />
    </>
  );
}

function NetworkForm({ network, tenants, physnets, onDone, onCancel }: { network: Network | null; tenants: string[]; physnets: string[]; onDone: (m: string) => void; onCancel: () => void }) {
  const who = useWho();
  const before = network ? valuesOf(network) : undefined;
  const form = useForm<NetValues>('network', before ?? { ...BLANK, tenant: who.tenant ?? tenants[0] ?? '' });
  const heading = useFocusOn<HTMLHeadingElement>(true);
  const save = () =>
    form.submit(async () => {
      if (network) {
        const body = bodyOf(form.values, before);
        if (Object.keys(body).length === 0) return form.refuse('maxTxRateMbps', 'nothing changed: change a setting, or cancel');
        await api.put(`/v1/networks/${encodeURIComponent(network.name)}`, body);
        onDone(`Network ${network.name} saved.`);
      } else {
        // The tenant list may have arrived after the form opened: its first is the default.
        const created = await api.post<Network>('/v1/networks', bodyOf({ ...form.values, tenant: form.values.tenant || tenants[0] || '' }));
        onDone(`Network ${created.name} created on VLAN ${created.vlan}.`);
      }
    });
  return (
    <form class="panel" aria-labelledby="network-form-title" noValidate onSubmit={(e) => (e.preventDefault(), void save())}>
      <h2 id="network-form-title" tabIndex={-1} ref={heading}>
        {network ? `Edit network ${network.name}` : 'New network'}
      </h2>
      {network && <p class="hint">Name and tenant do not change. While allocations hold its VFs, the physnet, VLAN, protocol, device type, minimum rate and IP pool stay as they are.</p>}
      <div class="fields">
        {!network && <TextField form={form} name="name" label="Name" help="1-63 lower-case letters, digits and '-'" autoComplete="off" required />}
        {!network && (who.tenant ? <TextField form={form} name="tenant" label="Tenant" readOnly /> : <SelectField form={form} name="tenant" label="Tenant" options={tenants.map((t) => [t, t])} />)}
        <TextField form={form} name="physnet" label="Physnet" list="physnet-names" autoComplete="off" required />
        <datalist id="physnet-names">
          {physnets.map((p) => (
            <option key={p} value={p} />
          ))}
        </datalist>
        {who.isStaff && <TextField form={form} name="vlan" label="VLAN" inputMode="numeric" help={network ? '1-4094 (0, untagged: admins)' : "1-4094; empty: the physnet's next free tenant VLAN"} />}
        <TextField form={form} name="qos" label="802.1p priority (qos)" inputMode="numeric" help="0-7" />
        <TextField form={form} name="minTxRateMbps" label="Min rate (Mbps)" inputMode="numeric" help="guarantee per VF; 0: none" />
        <TextField form={form} name="maxTxRateMbps" label="Max rate (Mbps)" inputMode="numeric" help="limit per VF; 0: none" />
        <TextField form={form} name="mtu" label="MTU" inputMode="numeric" help="68-65535; empty: the host's" />
        <SelectField form={form} name="deviceType" label="Device type" options={[['netdevice', 'netdevice (containers)'], ['vfio-pci', 'vfio-pci (VMs)']]} />
        {who.isAdmin && <SelectField form={form} name="vlanProto" label="VLAN protocol" options={[['802.1Q', '802.1Q'], ['802.1ad', '802.1ad (QinQ)']]} />}
        <TextField form={form} name="ipam" label="IP pool (CIDR)" help="IPv4 subnet for container addresses; empty: none" autoComplete="off" />
        {who.isAdmin && <CheckField form={form} name="spoofChk" label="Spoof checking" />}
        {who.isAdmin && <CheckField form={form} name="trust" label="Trusted VFs" />}
      </div>
      <FormFailure form={form} />
      <div class="actions">
        <button type="submit" class="primary" disabled={form.busy}>
          {network ? 'Save network' : 'Create network'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
