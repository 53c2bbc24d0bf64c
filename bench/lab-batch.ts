/**
 * Lab benchmark (inside test/lab/lab.sh, on real igb): configure 7 VFs × 5
 * fields with vfleet's single iproute2 batch (which reads the result back
 * in the same process), against one `ip link set` call per field, in the
 * same run: from the agent's model of the PF, and after reading the PF as
 * `sriovctl vf set` does. Alternates two value sets so every write really
 * changes every field.
 */
import { execFileSync } from 'node:child_process';
import { SriovHost } from '../src/host/configurator.js';
import { createLinuxPorts } from '../src/host/linux/index.js';
import type { VfSettings } from '../src/host/model.js';
import { labPfs } from '../test/lab/lab-host.js';
import { median, timeMs } from './stats.js';

const VFS = 7;
const ROUNDS = 5;

function settingsFor(round: number, vf: number): VfSettings {
  const odd = round % 2 === 1;
  return {
    mac: `02:5f:00:00:${odd ? '0a' : '0b'}:${vf.toString(16).padStart(2, '0')}`,
    vlan: odd ? 100 + vf : 200 + vf,
    maxTxRateMbps: odd ? 100 : 200,
    spoofChk: !odd,
    trust: odd,
  };
}

function perFieldCalls(pf: string, vf: number, s: VfSettings): void {
  const set = (...args: string[]) => execFileSync('ip', ['link', 'set', 'dev', pf, 'vf', String(vf), ...args]);
  set('mac', s.mac!);
  set('vlan', String(s.vlan));
  set('max_tx_rate', String(s.maxTxRateMbps));
  set('spoofchk', s.spoofChk ? 'on' : 'off');
  set('trust', s.trust ? 'on' : 'off');
}

export async function benchLabBatch(): Promise<void> {
  const host = new SriovHost(createLinuxPorts({}));
  const [pf] = (await labPfs(host)) as [string];
  await host.setAutoprobe(pf, false);
  await host.setNumVfs(pf, VFS);
  const requestsFor = (round: number) => Array.from({ length: VFS }, (_, vf) => ({ vf, settings: settingsFor(round, vf) }));
  const discovered: number[] = [];
  const fromModel: number[] = [];
  const perField: number[] = [];
  let model = await host.pf(pf);
  for (let round = 0; round < ROUNDS * 4; round += 4) {
    // As `sriovctl vf set` does: read the PF, then write and read back.
    discovered.push(await timeMs(() => host.setVfSettings(pf, requestsFor(round + 1))));
    perField.push(await timeMs(async () => {
      for (let vf = 0; vf < VFS; vf++) perFieldCalls(pf, vf, settingsFor(round + 2, vf));
    }));
    // As the agent does: from its model of the PF, one ip process that writes and reads back.
    model = await host.pf(pf);
    fromModel.push(await timeMs(async () => (model = (await host.applyVfSettings(model, requestsFor(round + 3))).pf)));
    // Back to the other value set, so the next round's first write changes every field again.
    perField.push(await timeMs(async () => {
      for (let vf = 0; vf < VFS; vf++) perFieldCalls(pf, vf, settingsFor(round + 4, vf));
    }));
  }
  const p = median(perField);
  const line = (label: string, ms: number) => `  ${label.padEnd(58)} ${ms.toFixed(1)} ms  (${(p / ms).toFixed(1)}x faster than per-field)`;
  console.log(`lab: configure ${VFS} VFs x 5 fields on igb (median of ${ROUNDS}, per-field of ${ROUNDS * 2})`);
  console.log(`  one ip link set per field (${VFS * 5} calls, no read-back):`.padEnd(61) + `${p.toFixed(1)} ms`);
  console.log(line('vfleet from its model (1 ip -batch with read-back):', median(fromModel)));
  console.log(line('vfleet after reading the PF (sriovctl vf set):', median(discovered)));
  await host.setNumVfs(pf, 0);
}

if (import.meta.url === `file://${process.argv[1]}`) await benchLabBatch();
