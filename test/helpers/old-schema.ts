/**
 * A store file as an older vfleet left it: the schema migrations before
 * `upTo` (an index into MIGRATIONS), with one attached container allocation
 * (`old-1`, pod-a on ens1f0 VF 0 of host-a, MAC 02:5f:00:00:00:01) written
 * in that schema's columns. Opening it runs the later migrations on top.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../src/store/sqlite/index.js';

export function writeOldStore(dir: string, upTo: number): void {
  const db = new Database(join(dir, 'vfleet.db'));
  for (const sql of MIGRATIONS.slice(0, upTo)) db.exec(sql);
  db.pragma(`user_version = ${upTo}`);
  db.prepare(
    `INSERT INTO allocations (id, workload_kind, workload_name, network, tenant, host, pf, pf_pci_address, vf_index, pci_address,
       mac, vlan, min_tx_rate_mbps, group_name, state, reason, created_at, updated_at, attachment_json)
     VALUES ('old-1', 'container', 'pod-a', 'red', 'acme', 'host-a', 'ens1f0', '0000:10:00.0', 0, '0000:10:00.1',
       '02:5f:00:00:00:01', 100, 0, NULL, 'attached', NULL, 'x', 'x', NULL)`,
  ).run();
  db.close();
}
