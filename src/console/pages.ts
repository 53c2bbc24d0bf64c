/**
 * Every page, its URL and who may open it. The nav shows only what the
 * session's role may read, and a page the role may not read is never
 * rendered, so the console never asks for what it would be refused.
 */
import type { ComponentType } from 'preact';
import type { Who } from './session.js';
import { OverviewPage } from './pages/overview.js';
import { HostsPage, HostPage } from './pages/hosts.js';
import { AllocationsPage } from './pages/allocations.js';
import { TrafficPage } from './pages/traffic.js';
import { NetworksPage } from './pages/networks.js';
import { TenantsPage } from './pages/tenants.js';
import { PhysnetsPage } from './pages/physnets.js';
import { EventsPage } from './pages/events.js';
import { TokensPage } from './pages/tokens.js';

export interface PageProps {
  params: Record<string, string>;
}

export interface PageDef {
  pattern: string;
  title: string;
  /** Shown in the nav (pages with parameters are reached by links). */
  nav: boolean;
  allowed: (who: Who) => boolean;
  component: ComponentType<PageProps>;
}

const anyone = () => true;
const staff = (w: Who) => w.isStaff;
const admin = (w: Who) => w.isAdmin;

export const PAGES: PageDef[] = [
  { pattern: '/', title: 'Overview', nav: true, allowed: anyone, component: OverviewPage },
  { pattern: '/hosts', title: 'Hosts', nav: true, allowed: staff, component: HostsPage },
  { pattern: '/hosts/:name', title: 'Host', nav: false, allowed: staff, component: HostPage },
  { pattern: '/allocations', title: 'Allocations', nav: true, allowed: anyone, component: AllocationsPage },
  { pattern: '/traffic', title: 'Traffic', nav: true, allowed: anyone, component: TrafficPage },
  { pattern: '/networks', title: 'Networks', nav: true, allowed: anyone, component: NetworksPage },
  { pattern: '/tenants', title: 'Tenants', nav: true, allowed: anyone, component: TenantsPage },
  { pattern: '/physnets', title: 'Physnets', nav: true, allowed: staff, component: PhysnetsPage },
  { pattern: '/events', title: 'Events', nav: true, allowed: staff, component: EventsPage },
  { pattern: '/tokens', title: 'Tokens', nav: true, allowed: admin, component: TokensPage },
];
