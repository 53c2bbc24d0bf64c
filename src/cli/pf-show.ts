/**
 * `sriovctl pf show <pf>`: one PF and its VFs. In switchdev mode each VF
 * shows its representor (what `ovs-vsctl add-port br-int <representor>`
 * takes) and, where the PF rates VFs through devlink, its leaf's parent
 * node; the PF's rate nodes follow.
 */
import type { PfInfo, VfInfo } from '../host/model.js';
import { onOff, table, type Cell } from './output.js';

const vlanOf = (vf: VfInfo) => (vf.vlan === 0 ? '-' : `${vf.vlan}${vf.qos ? ` qos ${vf.qos}` : ''}${vf.vlanProto === '802.1ad' ? ' 802.1ad' : ''}`);

export function pfShowTable(pf: PfInfo): string {
  const link = pf.linkSpeedMbps === null ? pf.linkState : `${pf.linkState} ${pf.linkSpeedMbps}M`;
  let out = table(
    ['PF', 'PCI', 'DRIVER', 'LINK', 'MTU', 'NUMA', 'VFS', 'AUTOPROBE', 'ESWITCH'],
    [[pf.name, pf.pciAddress, pf.driver, link, pf.mtu, pf.numaNode, `${pf.numVfs}/${pf.totalVfs}`, pf.autoprobe ? 'on' : 'off', pf.eswitchMode]],
  );
  const switchdev = pf.eswitchMode === 'switchdev';
  const rated = pf.vfs.some((vf) => vf.rateParent !== undefined);
  if (pf.vfs.length > 0) {
    const header = ['VF', 'PCI', 'DRIVER', 'NETDEV', 'MAC', 'VLAN', 'MIN/MAX MBPS', 'SPOOFCHK', 'TRUST', 'STATE'];
    if (switchdev) header.push('REPRESENTOR', 'DEVLINK PORT');
    if (rated) header.push('RATE PARENT');
    const rows = pf.vfs.map((vf) => {
      const row: Cell[] = [vf.index, vf.pciAddress, vf.driver, vf.netdev, vf.mac, vlanOf(vf), `${vf.minTxRateMbps}/${vf.maxTxRateMbps}`, onOff(vf.spoofChk), onOff(vf.trust), vf.linkState];
      if (switchdev) row.push(vf.representor?.netdev, vf.representor?.devlinkPort);
      if (rated) row.push(vf.rateParent);
      return row;
    });
    out += `\n${pf.name} VFs\n` + table(header, rows);
  }
  if (pf.rateNodes !== undefined) {
    const rows = pf.rateNodes.map((n) => [n.name, n.txShareMbps, n.txMaxMbps, n.parent]);
    out += `\n${pf.name} rate nodes\n` + (rows.length ? table(['NODE', 'TX_SHARE MBPS', 'TX_MAX MBPS', 'PARENT'], rows) : 'none\n');
  }
  return out;
}
