/** A VF's detail: its allocation and workload, the settings its host reports, and its live counters. */
import type { PfInfo, VfInfo } from './types.js';
import { ErrorNote, Link, mbps, workloadText } from './ui.js';
import { useLoad } from './use-api.js';
import { bps, last, loadTraffic, perSecond } from './traffic-data.js';
import type { VfTile } from './vf-grid.js';

const onOff = (v: boolean | null) => (v === null ? 'not supported' : v ? 'on' : 'off');

export function VfDetail({ host, pf, vf, state, onClose }: { host: string; pf: PfInfo; vf: VfInfo; state: VfTile; onClose: () => void }) {
  const a = state.allocation;
  const id = `vf-detail-${pf.pciAddress.replace(/[^a-z0-9]/gi, '-')}`;
  return (
    <section class="vf-detail" aria-labelledby={id}>
      <h3 id={id}>
        VF {vf.index} of {pf.name}: {state.state}
      </h3>
      <button type="button" onClick={onClose} class="close">
        Close detail
      </button>
      <div class="detail-cols">
        <div>
          <h4>Allocation</h4>
          {a ? (
            <dl class="facts">
              <Fact k="Workload" v={workloadText(a)} />
              <Fact k="Allocation" v={<Link to={`/allocations?host=${encodeURIComponent(host)}&workload=${encodeURIComponent(a.workload?.name ?? '')}`}>{a.id?.slice(0, 8)}</Link>} />
              <Fact k="State" v={a.state} />
              <Fact k="Tenant / network" v={`${a.tenant} / ${a.network}`} />
              <Fact k="Guarantee" v={mbps(a.minTxRateMbps)} />
              {a.attachment && typeof a.attachment.netns === 'string' && <Fact k="Namespace" v={`${a.attachment.netns} as ${String(a.attachment.ifname)}`} />}
              {a.attachment && Array.isArray(a.attachment.ips) && <Fact k="Addresses" v={(a.attachment.ips as string[]).join(', ') || 'none'} />}
              {a.reason && <Fact k="Reason" v={a.reason} />}
            </dl>
          ) : (
            <p>Free: no allocation holds it.</p>
          )}
        </div>
        <div>
          <h4>Settings the host reports</h4>
          <dl class="facts">
            <Fact k="PCI address" v={vf.pciAddress} />
            <Fact k="MAC" v={vf.mac} />
            <Fact k="VLAN / QoS" v={`${vf.vlan} / ${vf.qos} (${vf.vlanProto})`} />
            <Fact k="Min / max rate" v={`${mbps(vf.minTxRateMbps)} / ${mbps(vf.maxTxRateMbps)}`} />
            <Fact k="Spoof check / trust" v={`${onOff(vf.spoofChk)} / ${onOff(vf.trust)}`} />
            <Fact k="Link state" v={vf.linkState} />
            <Fact k="Driver" v={vf.driver ?? 'unbound'} />
            <Fact k="Netdev" v={vf.netdev ?? 'none on the host'} />
          </dl>
        </div>
        <VfCounters host={host} pf={pf.name} vf={vf.index} />
      </div>
    </section>
  );
}

function VfCounters({ host, pf, vf }: { host: string; pf: string; vf: number }) {
  const t = useLoad(`traffic:${host}:${pf}:${vf}`, () => loadTraffic({ scope: 'vf', host, pf, vf }), 5000);
  const s = t.data?.series.find((x) => x.pf === pf && x.vf === vf);
  return (
    <div aria-live="polite">
      <h4>
        Live counters {s?.simulated && <span class="badge">simulated</span>}
      </h4>
      <ErrorNote error={t.error} />
      {t.data === null && !t.loading && <p>This daemon serves no traffic telemetry.</p>}
      {t.data && !s && <p>No samples for this VF in the last 15 minutes.</p>}
      {s && (
        <dl class="facts">
          <Fact k="Receive" v={`${bps(last(s.rxBps))}, ${perSecond(last(s.rxPps))} packets`} />
          <Fact k="Transmit" v={`${bps(last(s.txBps))}, ${perSecond(last(s.txPps))} packets`} />
          <Fact k="Drops rx / tx" v={`${perSecond(last(s.rxDropsPs))} / ${perSecond(last(s.txDropsPs))}`} />
          <Fact k="Sampled" v={s.t.length ? new Date(last(s.t)).toLocaleTimeString() : '—'} />
        </dl>
      )}
    </div>
  );
}

function Fact({ k, v }: { k: string; v: preact.ComponentChildren }) {
  return (
    <div>
      <dt>{k}</dt>
      <dd>{v}</dd>
    </div>
  );
}
