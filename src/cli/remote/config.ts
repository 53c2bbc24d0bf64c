/**
 * Where remote mode finds the controller and the token. The server comes from
 * `--server`, then `SRIOV_SERVER`, then `server:` in the config file; the
 * token from `--token-file`, then `SRIOV_TOKEN`, then `token:` in the config
 * file (`$SRIOV_CONFIG`, default `~/.config/vfleet/config.yaml`). No server
 * anywhere means local mode.
 */
import { open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { SriovError, invalid } from '../../host/errors.js';
import type { Connection } from './client.js';

export interface ConnectionFlags {
  server?: string;
  tokenFile?: string;
}

const configSchema = z.object({ server: z.string().optional(), token: z.string().optional() }).strict();
type CliConfig = z.infer<typeof configSchema>;

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.SRIOV_CONFIG || join(homedir(), '.config', 'vfleet', 'config.yaml');
}

/** The connection to use, or null when nothing names a server (local mode). */
export async function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): Promise<Connection | null> {
  // The config file is read only when flags and environment leave a gap, so a
  // fully specified command does not depend on it.
  let config: Promise<CliConfig> | undefined;
  const fromConfig = () => (config ??= loadConfig(env));
  const server = flags.server || env.SRIOV_SERVER || (await fromConfig()).server;
  if (!server) return null;
  const token = (flags.tokenFile && (await readTokenFile(flags.tokenFile))) || env.SRIOV_TOKEN || (await fromConfig()).token;
  if (!token) {
    throw invalid(`no API token for ${server}: set SRIOV_TOKEN, pass --token-file FILE, or put token: in ${configPath(env)}`);
  }
  return { server: parseServerUrl(server), token: token.trim() };
}

export function parseServerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(`server "${value}" is not a URL (expected http(s)://HOST:PORT)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`server "${value}" must be an http:// or https:// URL`);
  if (url.search || url.hash) throw invalid(`server "${value}" must not have a query or fragment`);
  return url.href.replace(/\/+$/, '');
}

async function readTokenFile(file: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw invalid(`cannot read token file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (!text.trim()) throw invalid(`token file ${file} is empty`);
  return text.trim();
}

/** The config file; a missing default file is an empty config, a missing `$SRIOV_CONFIG` an error. */
async function loadConfig(env: NodeJS.ProcessEnv): Promise<CliConfig> {
  const file = configPath(env);
  let fh;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !env.SRIOV_CONFIG) return {};
    throw invalid(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  try {
    // Mode and content from one handle, so the check is about the file actually read.
    const mode = (await fh.stat()).mode;
    const config = parseConfig(file, await fh.readFile('utf8'));
    if (config.token && mode & 0o044) {
      throw new SriovError(
        'PERMISSION_DENIED',
        `config file ${file} holds a token but is readable by group or others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${file}`,
        { object: file, nothingChanged: true },
      );
    }
    return config;
  } finally {
    await fh.close();
  }
}

function parseConfig(file: string, text: string): CliConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw invalid(`config file ${file} is not valid YAML: ${(err as Error).message}`);
  }
  const result = configSchema.safeParse(doc ?? {});
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw invalid(`config file ${file}: ${issue.path.join('.') || '(top)'}: ${issue.message} (allowed keys: server, token)`);
  }
  return result.data;
}
