/**
 * Physical networks (staff). Node policies create them; admins set their
 * flags and tenant VLAN ranges here, or create one ahead of its policy.
 * There is no delete: the API has none, because a physnet lives as long as a
 * node policy names it.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { CheckField, FormFailure, TextField, useFocusOn, useForm } from '../forms/form.js';
import { ALL, useGet } from '../components/use-api.js';
import { ErrorNote } from '../components/ui.js';
import { useWho } from '../session.js';

interface Physnet {
  name: string;
  accountingOnly: boolean;
  tenantVlans: Array<{ from: number; to: number }>;
}

const formatRanges = (r: Physnet['tenantVlans']) => r.map((x) => (x.from === x.to ? `${x.from}` : `${x.from}-${x.to}`)).join(',');

/** `1000-1999,2100` as ranges; null when it is not that shape (the API checks the numbers). */
function parseRanges(text: string): Physnet['tenantVlans'] | null {
  const t = text.trim();
  if (t === '' || t === 'none') return [];
  const out: Physnet['tenantVlans'] = [];
  for (const part of t.split(',')) {
    const m = /^\s*([0-9]{1,4})\s*(?:-\s*([0-9]{1,4}))?\s*$/.exec(part);
    if (!m) return null;
    out.push({ from: Number(m[1]), to: Number(m[2] ?? m[1]) });
  }
  return out;
}

export function PhysnetsPage() {
  const who = useWho();
  const physnets = useGet<Physnet[]>(`/v1/physnets${ALL}`);
  const [editing, setEditing] = useState<Physnet | 'new' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  return (
    <>
      <h1>Physnets</h1>
      <p class="hint">Node policies put PFs on physical networks; networks are VLANs on them.</p>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {who.isAdmin && editing === null && (
        <div class="toolbar">
          <button type="button" class="primary" onClick={() => (setNotice(null), setEditing('new'))}>
            New physnet
          </button>
        </div>
      )}
      {editing !== null && (
        <PhysnetForm
          key={editing === 'new' ? '' : editing.name}
          physnet={editing === 'new' ? null : editing}
          onDone={(m) => (setEditing(null), setNotice(m), physnets.reload())}
          onCancel={() => setEditing(null)}
        />
      )}
      <ErrorNote error={physnets.error} />
      {physnets.data && (
        <div class="table-wrap">
          <table class="list">
            <caption class="visually-hidden">Physical networks</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Guarantees</th>
                <th scope="col">Tenant VLANs</th>
                {who.isAdmin && (
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {physnets.data.map((p) => (
                <tr key={p.name}>
                  <th scope="row">{p.name}</th>
                  <td>{p.accountingOnly ? 'accounted only' : 'enforced'}</td>
                  <td>{formatRanges(p.tenantVlans) || 'none'}</td>
                  {who.isAdmin && (
                    <td class="row-actions">
                      <button type="button" onClick={() => (setNotice(null), setEditing(p))} aria-label={`Edit physnet ${p.name}`}>
                        Edit
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
          {physnets.data.length === 0 && <p>No physnets yet: a node policy creates them.</p>}
        </div>
      )}
    </>
  );
}

function PhysnetForm({ physnet, onDone, onCancel }: { physnet: Physnet | null; onDone: (m: string) => void; onCancel: () => void }) {
  const form = useForm('physnet', { name: physnet?.name ?? '', accountingOnly: physnet?.accountingOnly ?? false, tenantVlans: formatRanges(physnet?.tenantVlans ?? []) });
  const heading = useFocusOn<HTMLHeadingElement>(true);
  const save = () =>
    form.submit(async () => {
      const tenantVlans = parseRanges(form.values.tenantVlans);
      if (tenantVlans === null) return form.refuse('tenantVlans', 'tenant VLANs must be ranges like 1000-1999,2100-2199, or empty for none');
      const name = form.values.name.trim();
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) return form.refuse('name', "name must be 1-63 lower-case letters, digits and '-'");
      await api.put(`/v1/physnets/${encodeURIComponent(name)}`, { accountingOnly: form.values.accountingOnly, tenantVlans });
      onDone(`Physnet ${name} saved.`);
    });
  return (
    <form class="panel" aria-labelledby="physnet-form-title" noValidate onSubmit={(e) => (e.preventDefault(), void save())}>
      <h2 id="physnet-form-title" tabIndex={-1} ref={heading}>
        {physnet ? `Edit physnet ${physnet.name}` : 'New physnet'}
      </h2>
      <div class="fields">
        {!physnet && <TextField form={form} name="name" label="Name" autoComplete="off" required />}
        <TextField form={form} name="tenantVlans" label="Tenant VLANs" help="e.g. 1000-1999,2100-2199; empty: none" autoComplete="off" />
        <CheckField form={form} name="accountingOnly" label="Only account guarantees" help="for PFs whose driver cannot enforce a minimum rate" />
      </div>
      <FormFailure form={form} />
      <div class="actions">
        <button type="submit" class="primary" disabled={form.busy}>
          Save physnet
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
