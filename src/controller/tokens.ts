/**
 * Bearer tokens. Only a SHA-256 of each secret is stored; the secret is shown
 * once, when the token is created.
 */
import { createHash, randomBytes } from 'node:crypto';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { notFound, requireAdmin, type Actor } from '../domain/actor.js';
import type { Role, TokenRecord } from '../domain/types.js';
import { invalid } from '../host/errors.js';
import { recorded, type Context } from './context.js';
import { parseHostName, parseName } from './networks.js';

export const hashToken = (secret: string) => createHash('sha256').update(secret).digest('hex');

export function parseRole(value: string): Role {
  if (value === 'admin' || value === 'operator') return value;
  const m = /^(tenant|agent):(.+)$/.exec(value);
  if (!m) throw invalid(`role must be admin, operator, tenant:NAME or agent:HOST, got ${JSON.stringify(value)}`);
  return m[1] === 'agent' ? `agent:${parseHostName(m[2])}` : `tenant:${parseName(m[2], 'tenant')}`;
}

export class TokenService {
  constructor(private readonly ctx: Context) {}

  async authenticate(secret: string): Promise<Actor | null> {
    const record = await this.ctx.store.tx.findTokenByHash(hashToken(secret));
    return record ? { id: record.id, role: record.role } : null;
  }

  async create(actor: Actor, role: string): Promise<{ id: string; role: Role; token: string }> {
    requireAdmin(actor, 'create tokens');
    const { record, token } = this.mint(parseRole(role));
    await recorded(this.ctx, actor, 'token.create', `token/${record.id}`, async (tx) => {
      await tx.putToken(record);
      return { before: null, after: { id: record.id, role: record.role }, result: undefined };
    });
    return { id: record.id, role: record.role, token };
  }

  async list(actor: Actor): Promise<Array<Omit<TokenRecord, 'hash'>>> {
    requireAdmin(actor, 'list tokens');
    return (await this.ctx.store.tx.listTokens()).map(({ hash: _hash, ...rest }) => rest);
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

  private mint(role: Role): { record: TokenRecord; token: string } {
    const token = `vfl_${randomBytes(24).toString('base64url')}`;
    const id = `tok-${randomBytes(4).toString('hex')}`;
    return { token, record: { id, role, hash: hashToken(token), createdAt: this.ctx.now() } };
  }
}
