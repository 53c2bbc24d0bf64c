/**
 * API tokens (admins): create one (its secret is shown once, to copy), list
 * them, revoke one after a confirmation that names it.
 */
import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { ConfirmDialog, useConfirmation } from '../forms/confirm.js';
import { FormFailure, SelectField, TextField, useFocusOn, useForm } from '../forms/form.js';
import { ALL, useGet } from '../components/use-api.js';
import { ErrorNote } from '../components/ui.js';

interface Token {
  id: string;
  role: string;
  createdAt: string;
}

const KINDS: Array<[string, string]> = [
  ['tenant', 'tenant: one tenant’s networks and allocations'],
  ['operator', 'operator: the fleet, without tokens and tenants'],
  ['admin', 'admin: everything'],
  ['node', 'node: the CNI and device plugins of one host'],
  ['agent', 'agent: the agent of one host'],
];

export function TokensPage() {
  const tokens = useGet<Token[]>(`/v1/tokens${ALL}`);
  const tenants = useGet<Array<{ name: string }>>(`/v1/tenants${ALL}`);
  const [created, setCreated] = useState<{ id: string; role: string; token: string } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const form = useForm('token', { role: 'tenant', tenant: '', host: '' });
  const revoke = useConfirmation<Token>();
  const kind = form.values.role;
  const tenantNames = (tenants.data ?? []).map((t) => t.name);
  const create = () =>
    form.submit(async () => {
      setNotice(null);
      setCreated(null);
      const tenant = form.values.tenant || tenantNames[0] || '';
      if (kind === 'tenant' && !tenant) return form.refuse('tenant', 'create a tenant first');
      const role = kind === 'tenant' ? `tenant:${tenant}` : kind === 'node' || kind === 'agent' ? `${kind}:${form.values.host.trim()}` : kind;
      setCreated(await api.post<{ id: string; role: string; token: string }>('/v1/tokens', { role }));
      tokens.reload();
    });
  return (
    <>
      <h1>Tokens</h1>
      {notice && (
        <p class="notice" role="status">
          {notice}
        </p>
      )}
      {created && <Secret created={created} onDone={() => setCreated(null)} />}
      <form class="panel" aria-labelledby="token-form-title" noValidate onSubmit={(e) => (e.preventDefault(), void create())}>
        <h2 id="token-form-title">New token</h2>
        <div class="fields">
          <SelectField form={form} name="role" label="Role" options={KINDS} />
          {kind === 'tenant' && <SelectField form={form} name="tenant" label="Tenant" options={tenantNames.map((t) => [t, t])} />}
          {(kind === 'node' || kind === 'agent') && <TextField form={form} name="host" label="Host" help="the host's name, as its agent reports it" autoComplete="off" required />}
        </div>
        <FormFailure form={form} />
        <div class="actions">
          <button type="submit" class="primary" disabled={form.busy}>
            Create token
          </button>
        </div>
      </form>
      <ErrorNote error={tokens.error} />
      {tokens.data && (
        <div class="table-wrap">
          <table class="list">
            <caption class="visually-hidden">Tokens</caption>
            <thead>
              <tr>
                <th scope="col">Id</th>
                <th scope="col">Role</th>
                <th scope="col">Created</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {tokens.data.map((t) => (
                <tr key={t.id}>
                  <th scope="row">
                    <code>{t.id}</code>
                  </th>
                  <td>{t.role}</td>
                  <td>{new Date(t.createdAt).toLocaleString()}</td>
                  <td class="row-actions">
                    <button type="button" class="danger" onClick={() => revoke.ask(t)} aria-label={`Revoke token ${t.id} (${t.role})`}>
                      Revoke
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <ConfirmDialog
        c={revoke}
        title={(t) => `Revoke token ${t.id}?`}
        body={(t) => (
          <p>
            Token <code>{t.id}</code> ({t.role}) stops working at once. Whoever uses it needs a new one.
          </p>
        )}
        confirmLabel="Revoke token"
        run={async (t) => {
          await api.del(`/v1/tokens/${encodeURIComponent(t.id)}`);
          if (created?.id === t.id) setCreated(null);
          setNotice(`Token ${t.id} revoked.`);
          tokens.reload();
        }}
      />
    </>
  );
}

/** The secret, shown this once: selected for copying, with a button that copies it. */
function Secret({ created, onDone }: { created: { id: string; role: string; token: string }; onDone: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const input = useFocusOn<HTMLInputElement>(true);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(created.token);
      setCopied('Copied to the clipboard.');
    } catch {
      // No clipboard permission (plain http, or refused): the secret is selected for Ctrl+C instead.
      input.current?.select();
      setCopied('Selected: press Ctrl+C to copy.');
    }
  };
  return (
    <section class="notice" aria-labelledby="secret-title">
      <h2 id="secret-title">
        Token {created.id} ({created.role}) created
      </h2>
      <p>This is the only time its secret is shown. Copy it now.</p>
      <div class="secret">
        <label for="token-secret">Secret</label>
        <input id="token-secret" ref={input} readOnly value={created.token} onFocus={(e) => e.currentTarget.select()} />
        <button type="button" onClick={() => void copy()}>
          Copy
        </button>
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
      <p role="status">{copied}</p>
    </section>
  );
}
