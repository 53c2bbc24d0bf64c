/** The VF scheduler: see scheduler.ts. */
export { Scheduler } from './scheduler.js';
export type { NumaPolicy, Placement, PlacementPolicy, PlacementRequest, SchedulerOptions } from './types.js';
export type { HostEntry, PfEntry } from './entries.js';
export type { Holding } from './capacity-index.js';
export type { GroupEnforcement, GroupMisfit, GroupPf } from './group-view.js';
export { groupOfTenant, type TenantGroup } from './tenant-groups.js';
