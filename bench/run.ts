/** `npm run bench`: the in-process benchmarks, each against a baseline run in the same process. */
import { benchAllocateService } from './allocate-service.js';
import { benchAllocate } from './allocate.js';
import { benchHeartbeat } from './heartbeat.js';
import { benchLists } from './lists.js';
import { benchMetricsScrape } from './metrics-scrape.js';
import { benchMigration } from './migration.js';
import { benchRateGroups } from './rate-groups.js';
import { benchSwitchdevPolicy } from './switchdev-policy.js';
import { benchSysfsWalk } from './sysfs-walk.js';
import { benchTrafficIngest } from './traffic-ingest.js';

await benchSysfsWalk();
await benchAllocate();
await benchAllocateService();
await benchMigration();
await benchLists();
await benchHeartbeat();
await benchMetricsScrape();
await benchTrafficIngest(1000, 3);
await benchRateGroups();
await benchSwitchdevPolicy();
