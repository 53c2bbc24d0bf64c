/**
 * The controller URLs an agent reports to (`--server URL1,URL2,...`): several
 * controllers behind one store, any of which serves the agent. Checked at
 * start: each must be an http(s) URL with a host and nothing after the path.
 */
import { SriovError } from '../host/errors.js';

export function parseServers(text: string): string[] {
  const items = text.split(',').map((s) => s.trim());
  const servers = items.map((item, i) => parseServer(item, i + 1));
  const seen = new Set<string>();
  for (const s of servers) {
    if (seen.has(s)) throw refused(`controller URL ${s} is given twice`, s);
    seen.add(s);
  }
  return servers;
}

function parseServer(item: string, position: number): string {
  const where = `controller URL ${position} of --server`;
  if (!item) throw refused(`${where} is empty; give URLs separated by commas, like http://ctl1:7474,http://ctl2:7474`, item);
  let url: URL;
  try {
    url = new URL(item);
  } catch {
    throw refused(`${where} (${item}) is not a URL; give one like http://ctl1:7474`, item);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refused(`${where} (${item}) has scheme ${url.protocol.slice(0, -1)}; use http or https`, item);
  if (url.username || url.password) throw refused(`${where} (${url.host}) carries credentials; give the token with --token-file instead`, url.host);
  if (url.search || url.hash) throw refused(`${where} (${item}) has a query or fragment; give the controller's base URL only`, item);
  return url.href.replace(/\/+$/, '');
}

function refused(message: string, object: string): SriovError {
  return new SriovError('INVALID_ARGUMENT', message, { object, nothingChanged: true });
}
