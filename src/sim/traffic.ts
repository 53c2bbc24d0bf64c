/**
 * The simulated host's traffic counters, for the agent's sampler (the
 * CounterPort). A VF in use by a workload (its netdev in a container's
 * namespace, or bound to a driver other than the VF netdev driver: a VM's
 * vfio-pci) passes traffic; a free VF passes none. One with a max_tx_rate
 * sends at 42-78 % of it, one without at a modest few Mbit/s, in a slow wave
 * so that charts move. Packets follow bytes, and a few are dropped.
 *
 * Counters are integrated in memory from one read to the next, with the
 * rate the VF had at the previous read: monotonic, and no write to the state
 * file. A new SimHost (an agent restart) starts them at zero again, as a
 * driver reload would. A PF's counters are the sum of its VFs' (its port).
 */
import type { VfStats } from '../host/model.js';
import type { PfCounterRead } from '../host/ports.js';
import { pfOperState } from './cable.js';
import { simProfile } from './profiles.js';
import type { SimPf, SimVf } from './state.js';

const WAVE_PERIOD_S = 90;
const WAVE_DEPTH = 0.3;
const TX_PACKET_BYTES = 800;
const RX_PACKET_BYTES = 1000;
/** One rx packet in this many is dropped, one tx packet in TX_DROP_EVERY. */
const RX_DROP_EVERY = 50_000;
const TX_DROP_EVERY = 200_000;
const BYTES_PER_MBIT = 125_000;

/** The rates a VF's counters grow at, mean Mbit/s (0: idle). */
export interface SimRates {
  txMbps: number;
  rxMbps: number;
}

/** Whether a workload holds the VF: its netdev in a container namespace, or a VM's driver bound. */
function inUse(pf: SimPf, vf: SimVf): boolean {
  return vf.netns !== undefined || (vf.driver !== null && vf.driver !== simProfile(pf.profile).vfDriver);
}

export function simRates(pf: SimPf, vf: SimVf): SimRates {
  if (!inUse(pf, vf) || vf.linkState === 'disable' || pfOperState(pf) !== 'up') return { txMbps: 0, rxMbps: 0 };
  const spread = vf.index % 8;
  if (vf.maxTxRateMbps > 0) return { txMbps: 0.6 * vf.maxTxRateMbps, rxMbps: 0.4 * vf.maxTxRateMbps };
  return { txMbps: 8 + 2 * spread, rxMbps: 12 + 3 * spread };
}

/** ∫ (1 + d·sin(ωt + φ)) dt over [a, b] seconds: the wave's time, always ≥ (1 - d)(b - a). */
function waveIntegral(a: number, b: number, phase: number): number {
  const w = (2 * Math.PI) / WAVE_PERIOD_S;
  return b - a + (WAVE_DEPTH / w) * (Math.cos(w * a + phase) - Math.cos(w * b + phase));
}

interface Running {
  at: number;
  rates: SimRates;
  txBytes: number;
  rxBytes: number;
}

function countersOf(r: Running): VfStats {
  const txBytes = Math.floor(r.txBytes);
  const rxBytes = Math.floor(r.rxBytes);
  const txPackets = Math.floor(txBytes / TX_PACKET_BYTES);
  const rxPackets = Math.floor(rxBytes / RX_PACKET_BYTES);
  return { rxBytes, txBytes, rxPackets, txPackets, rxDropped: Math.floor(rxPackets / RX_DROP_EVERY), txDropped: Math.floor(txPackets / TX_DROP_EVERY) };
}

const sum = (list: VfStats[]): VfStats =>
  list.reduce(
    (a, s) => ({
      rxBytes: a.rxBytes + s.rxBytes,
      txBytes: a.txBytes + s.txBytes,
      rxPackets: a.rxPackets + s.rxPackets,
      txPackets: a.txPackets + s.txPackets,
      rxDropped: a.rxDropped + s.rxDropped,
      txDropped: a.txDropped + s.txDropped,
    }),
    { rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0, rxDropped: 0, txDropped: 0 },
  );

/** Per VF PCI address: the counters so far and the rate they grow at. */
export class SimTraffic {
  private readonly running = new Map<string, Running>();

  read(pf: SimPf, now: number): PfCounterRead {
    const vfs = pf.vfs.map((vf) => ({ index: vf.index, counters: this.advance(pf, vf, now), source: 'simulated' as const }));
    return { pf: sum(vfs.map((v) => v.counters)), vfs, simulated: true };
  }

  /** Grows the VF's counters to `now` at the rate it had, then takes its rate from now on. */
  private advance(pf: SimPf, vf: SimVf, now: number): VfStats {
    const rates = simRates(pf, vf);
    const r = this.running.get(vf.pciAddress) ?? { at: now, rates, txBytes: 0, rxBytes: 0 };
    if (now > r.at) {
      const time = waveIntegral(r.at / 1000, now / 1000, vf.index);
      r.txBytes += r.rates.txMbps * BYTES_PER_MBIT * time;
      r.rxBytes += r.rates.rxMbps * BYTES_PER_MBIT * time;
      r.at = now;
    }
    r.rates = rates;
    this.running.set(vf.pciAddress, r);
    return countersOf(r);
  }
}
