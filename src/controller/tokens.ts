/**
 * Bearer tokens. Only a SHA-256 of each secret is stored; the secret is shown
 * once, when the token is created.
 *
 * A `tenant:<name>` token is bound to the tenant's immutable id, not its name:
 * it stops working when the tenant is deleted (its tokens are revoked then)
 * and never reaches a tenant re-created under the same name. `agent:<host>`
 * and `node:<host>` tokens may name a host that has not reported yet: they are
 * minted before the agent first starts, to be handed to it.
 */
import { parseHostName } from '../host/validate.js';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { notFound, requireAdmin, tenantOf, type Actor } from '../domain/actor.js';
import type { Role, Tenant, TokenRecord } from '../domain/types.js';
import { invalid, SriovError } from '../host/errors.js';
import type { StoreTx } from '../store/store.js';
import { recorded, type Context } from './context.js';
import { parseName } from './networks.js';

export const hashToken = (secret: string) => createHash('sha256').update(secret).digest('hex');

export function parseRole(value: string): Role {
  if (value === 'admin' || value === 'operator') return value;
  const m = /^(tenant|agent|node):(.+)$/.exec(value);
  if (!m) throw invalid(`role must be admin, operator, tenant:NAME, node:HOST or agent:HOST, got ${JSON.stringify(value)}`);
  if (m[1] === 'tenant') return `tenant:${parseName(m[2], 'tenant')}`;
  return m[1] === 'agent' ? `agent:${parseHostName(m[2])}` : `node:${parseHostName(m[2])}`;
}

/**
 * Revokes every token bound to `tenant`, inside the caller's transaction (the
 * tenant's deletion), with one audit event per token.
 */
export async function revokeTenantTokens(tx: StoreTx, actor: Actor, tenant: Tenant, at: string): Promise<void> {
  for (const t of await tx.listTokens()) {
    if (t.tenantId !== tenant.id && t.role !== `tenant:${tenant.name}`) continue;
    await tx.deleteToken(t.id);
    await tx.appendEvent({ at, actor: `${actor.role}/${actor.id}`, action: 'token.revoke', object: `token/${t.id}`, before: { id: t.id, role: t.role }, after: `tenant ${tenant.name} deleted` });
  }
}

export class TokenService {
  constructor(private readonly ctx: Context) {}

  /** The token's actor; null when the secret is unknown or its tenant is gone or was re-created. */
  async authenticate(secret: string): Promise<Actor | null> {
    // Through the reads: while the store does not answer, tokens are checked against memory (stale-reads.ts).
    const record = await this.ctx.reads.findTokenByHash(hashToken(secret));
    if (!record) return null;
    const tenant = tenantOf(record);
    if (tenant !== null) {
      const current = await this.ctx.reads.getTenant(tenant);
      if (!current || record.tenantId === null || current.id !== record.tenantId) return null;
    }
    return { id: record.id, role: record.role };
  }

  async create(actor: Actor, role: string): Promise<{ id: string; role: Role; token: string }> {
    requireAdmin(actor, 'create tokens');
    const parsed = parseRole(role);
    const tenant = tenantOf({ role: parsed });
    const { record, token } = this.mint(parsed);
    await recorded(this.ctx, actor, 'token.create', `token/${record.id}`, async (tx) => {
      if (tenant !== null) record.tenantId = (await this.existingTenant(tx, tenant)).id;
      await tx.putToken(record);
      return { before: null, after: { id: record.id, role: record.role }, result: undefined };
    });
    return { id: record.id, role: record.role, token };
  }

  async list(actor: Actor): Promise<Array<Omit<TokenRecord, 'hash' | 'tenantId'>>> {
    requireAdmin(actor, 'list tokens');
    return (await this.ctx.store.tx.listTokens()).map(({ hash: _hash, tenantId: _tenantId, ...rest }) => rest);
  }

  async delete(actor: Actor, id: string): Promise<void> {
    requireAdmin(actor, 'delete tokens');
    await recorded(this.ctx, actor, 'token.delete', `token/${id}`, async (tx) => {
      const before = (await tx.listTokens()).find((t) => t.id === id);
      if (!before || !(await tx.deleteToken(id))) throw notFound('token', id);
      return { before: { id, role: before.role }, after: null, result: undefined };
    });
  }

  /**
   * On first start, an admin token is written to DIR/admin.token (mode 0600);
   * later starts keep it as long as the store still knows its hash.
   */
  async bootstrapAdmin(dataDir: string): Promise<string> {
    const file = join(dataDir, 'admin.token');
    const existing = await readFile(file, 'utf8').then((s) => s.trim(), () => null);
    if (existing && (await this.ctx.store.tx.findTokenByHash(hashToken(existing)))) return file;
    const { record, token } = this.mint('admin');
    await recorded(this.ctx, { id: 'bootstrap', role: 'admin' }, 'token.bootstrap', `token/${record.id}`, async (tx) => {
      await tx.putToken(record);
      return { before: null, after: { id: record.id, role: 'admin' }, result: undefined };
    });
    await writeFile(file, token + '\n', { mode: 0o600 });
    await chmod(file, 0o600);
    return file;
  }

  /** A token for a tenant that does not exist would name nothing (or, later, a stranger of that name). */
  private async existingTenant(tx: StoreTx, name: string): Promise<Tenant> {
    const tenant = await tx.getTenant(name);
    if (!tenant) {
      throw new SriovError('NOT_FOUND', `tenant ${name} does not exist; create it first (sriovctl tenant create ${name})`, {
        object: name,
        nothingChanged: true,
      });
    }
    return tenant;
  }

  private mint(role: Role): { record: TokenRecord; token: string } {
    const token = `vfl_${randomBytes(24).toString('base64url')}`;
    const id = `tok-${randomBytes(4).toString('hex')}`;
    return { token, record: { id, role, tenantId: null, hash: hashToken(token), createdAt: this.ctx.now() } };
  }
}
