/**
 * Tenants: admins create and delete them; a tenant sees itself. There is no
 * edit: a tenant is its name (and an id its tokens bind to), and the name is
 * the key its networks and allocations carry, so renaming would rewrite them
 * all; create a new tenant instead.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ConfirmDialog, useConfirmation } from '../forms/confirm.js';
import { FormFailure, TextField, useForm } from '../forms/form.js';
import { ALL, useGet } from '../components/use-api.js';
import { ErrorNote } from '../components/ui.js';
import { useWho } from '../session.js';

interface Tenant {
  name: string;
  createdAt: string;
}

export function TenantsPage() {
  const who = useWho();
  const tenants = useGet<Tenant[]>(`/v1/tenants${ALL}`);
  const [notice, setNotice] = useState<string | null>(null);
  const form = useForm('tenant', { name: '' });
  const del = useConfirmation<Tenant>();
  const create = () =>
    form.submit(async () => {
      const t = await api.post<Tenant>('/v1/tenants', { name: form.values.name.trim() });
      form.reset();
      setNotice(`Tenant ${t.name} created.`);
      tenants.reload();
    });
  return (
    <>
      <h1>Tenants</h1>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {who.isAdmin && (
        <form class="panel" aria-labelledby="tenant-form-title" noValidate onSubmit={(e) => (e.preventDefault(), setNotice(null), void create())}>
          <h2 id="tenant-form-title">New tenant</h2>
          <div class="fields">
            <TextField form={form} name="name" label="Name" help="1-63 lower-case letters, digits and '-'" autoComplete="off" required />
          </div>
          <FormFailure form={form} />
          <div class="actions">
            <button type="submit" class="primary" disabled={form.busy}>
              Create tenant
            </button>
          </div>
        </form>
      )}
      <ErrorNote error={tenants.error} />
      {tenants.data && (
        <div class="table-wrap">
          <table class="list">
            <caption class="visually-hidden">Tenants</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Created</th>
                {who.isAdmin && (
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                )}
              </tr>
            </thead>
            <tbody>
              {tenants.data.map((t) => (
                <tr key={t.name}>
                  <th scope="row">{t.name}</th>
                  <td>{new Date(t.createdAt).toLocaleString()}</td>
                  {who.isAdmin && (
                    <td class="row-actions">
                      <button type="button" class="danger" onClick={() => del.ask(t)} aria-label={`Delete tenant ${t.name}`}>
                        Delete
                      </button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <p class="hint">Tenants are not renamed: networks and allocations carry the name. Create a new tenant instead.</p>
      <ConfirmDialog
        c={del}
        title={(t) => `Delete tenant ${t.name}?`}
        body={(t) => (
          <p>
            Tenant <strong>{t.name}</strong> will be deleted and its tokens revoked. The API refuses while it still has networks.
          </p>
        )}
        confirmLabel="Delete tenant"
        run={async (t) => {
          await api.del(`/v1/tenants/${encodeURIComponent(t.name)}`);
          setNotice(`Tenant ${t.name} deleted.`);
          tenants.reload();
        }}
      />
    </>
  );
}
