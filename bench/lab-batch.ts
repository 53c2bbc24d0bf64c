/**
 * Lab benchmark (inside test/lab/lab.sh, on real igb): configure 7 VFs × 5
 * fields with vfleet's single iproute2 batch, against one `ip link set` call
 * per field, in the same run. Alternates two value sets so every round
 * really changes every field.
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
  const batch: number[] = [];
  const perField: number[] = [];
  for (let round = 0; round < ROUNDS * 2; round += 2) {
    const requests = Array.from({ length: VFS }, (_, vf) => ({ vf, settings: settingsFor(round + 1, vf) }));
    batch.push(await timeMs(() => host.setVfSettings(pf, requests)));
    perField.push(await timeMs(async () => {
      for (let vf = 0; vf < VFS; vf++) perFieldCalls(pf, vf, settingsFor(round, vf));
    }));
  }
  const b = median(batch);
  const p = median(perField);
  console.log(`lab: configure ${VFS} VFs x 5 fields on igb (median of ${ROUNDS})`);
  console.log(`  vfleet batch (1 ip -batch + read-back verify): ${b.toFixed(1)} ms`);
  console.log(`  one ip link set per field (${VFS * 5} calls):  ${p.toFixed(1)} ms`);
  console.log(`  ratio batch/per-field: ${(b / p).toFixed(3)} (${(p / b).toFixed(1)}x faster)`);
  await host.setNumVfs(pf, 0);
}

if (import.meta.url === `file://${process.argv[1]}`) await benchLabBatch();
