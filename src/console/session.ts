/** Who the console acts as, read once from /v1/info after login. */
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';

export interface Who {
  role: string;
  /** The tenant a `tenant:<name>` token acts for; null for staff. */
  tenant: string | null;
  isAdmin: boolean;
  /** admin or operator: may read hosts, physnets, events and the audit. */
  isStaff: boolean;
  version: string;
  demo: boolean;
}

export function whoFrom(info: { role: string; version: string; demo?: boolean }): Who {
  const tenant = info.role.startsWith('tenant:') ? info.role.slice(7) : null;
  return {
    role: info.role,
    tenant,
    isAdmin: info.role === 'admin',
    isStaff: info.role === 'admin' || info.role === 'operator',
    version: info.version,
    demo: info.demo === true,
  };
}

export const WhoContext = createContext<Who | null>(null);

export function useWho(): Who {
  const who = useContext(WhoContext);
  if (!who) throw new Error('useWho outside a session');
  return who;
}
