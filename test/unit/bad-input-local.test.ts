// The bad-input catalogue of local mode (issue 8, findings 6 and 7): sriovctl run as a user would,
// against simulated hosts, with input that must be refused. For every case: exit 2, a short error
// that names the field, no stack trace, no regular expression, and the host file unchanged by a byte.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sriovctl } from '../helpers/cli.js';

interface Files {
  dir: string;
  /** igb, 2 PFs; ens1f0 has 4 VFs, ens1f1 none. */
  igb: string;
  /** ice, 2 PFs (one per NUMA node); ens1f0 has 4 VFs, VF 0 with MAC 02:00:00:00:00:01. */
  ice: string;
  passwd: string;
  directory: string;
  garbage: string;
  huge: string;
  shape: string;
  missing: string;
  policyDir: string;
}

interface Case {
  what: string;
  args: (f: Files) => string[];
  /** What the error must say: the field, and for most the limit. */
  says: RegExp;
  /** Files that must be byte-for-byte the same afterwards (or still absent); default the igb host. */
  watch?: (f: Files) => string[];
}

let f: Files;
let env: NodeJS.ProcessEnv;
let seq = 0;

const IGB_PF = 'ens1f0';
const ICE_PF = 'ens1f0';

async function ok(args: string[]): Promise<void> {
  const r = await sriovctl(args, env);
  assert.equal(r.code, 0, `sriovctl ${args.join(' ')}: ${r.stderr}`);
}

async function policy(text: string): Promise<string> {
  const file = join(f.policyDir, `policy-${seq++}.yaml`);
  await writeFile(file, text);
  return file;
}

before(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'vfleet-bad-input-'));
  env = { HOME: dir, SRIOV_SERVER: '', SRIOV_TOKEN: '', SRIOV_CONFIG: '' };
  f = {
    dir,
    igb: join(dir, 'igb.json'),
    ice: join(dir, 'ice.json'),
    passwd: join(dir, 'passwd'),
    directory: join(dir, 'a-directory'),
    garbage: join(dir, 'garbage.json'),
    huge: join(dir, 'huge.json'),
    shape: join(dir, 'shape.json'),
    missing: join(dir, 'missing.json'),
    policyDir: join(dir, 'policies'),
  };
  await mkdir(f.directory);
  await mkdir(f.policyDir);
  await writeFile(f.passwd, 'root:x:0:0:root-secret:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n');
  // Bytes that are no text at all, long enough that quoting them would flood a terminal.
  await writeFile(f.garbage, Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919 + 13) & 0xff)));
  await writeFile(f.huge, '');
  await truncate(f.huge, 65 * 1024 * 1024);
  await writeFile(f.shape, JSON.stringify({ version: 1, hostname: 'x', pfs: [{ name: 'ens1f0' }] }));
  await ok(['sim', 'init', f.igb, '--profile', 'igb', '--pfs', '2']);
  await ok(['--host', `sim:${f.igb}`, 'pf', 'set', IGB_PF, '--num-vfs', '4']);
  await ok(['sim', 'init', f.ice, '--profile', 'ice', '--pfs', '2', '--numa-nodes', '2']);
  await ok(['--host', `sim:${f.ice}`, 'pf', 'set', ICE_PF, '--num-vfs', '4']);
  await ok(['--host', `sim:${f.ice}`, 'vf', 'set', ICE_PF, '0', '--mac', '02:00:00:00:00:01']);
});
after(async () => {
  await rm(f.dir, { recursive: true, force: true });
});

const igb = (...args: string[]) => (x: Files) => ['--host', `sim:${x.igb}`, ...args];
const ice = (...args: string[]) => (x: Files) => ['--host', `sim:${x.ice}`, ...args];
const onIce = (x: Files) => [x.ice];
/** A path `sim init` must not create. */
const fresh = () => join(f.dir, `new-${seq++}.json`);

async function snapshot(paths: string[]): Promise<Array<Buffer | null>> {
  return Promise.all(paths.map((p) => readFile(p).catch(() => null)));
}

async function refused(c: Case): Promise<void> {
  const args = c.args(f);
  const watched = (c.watch ?? ((x: Files) => [x.igb]))(f);
  const before = await snapshot(watched);
  const r = await sriovctl(args, env);
  const shownArgs = args.map((a) => (a.length > 60 ? `${a.slice(0, 60)}…` : a)).join(' ');
  assert.equal(r.code, 2, `sriovctl ${shownArgs} exited ${r.code}: ${r.stderr.slice(0, 500)}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.ok(lines.length >= 1 && lines.length <= 3 && lines.every((l) => l.length <= 420), `not a short error: ${r.stderr.slice(0, 600)}`);
  assert.match(r.stderr, c.says);
  assert.doesNotMatch(r.stderr, /^\s+at\s/m, 'a stack trace');
  assert.doesNotMatch(r.stderr, /must match pattern|\/\^|\^\[|\\d|\[0-9|\(\?:|\$\//, 'a regular expression');
  assert.doesNotMatch(r.stderr, /root-secret|nologin/, "a file's bytes");
  const after = await snapshot(watched);
  for (const [i, path] of watched.entries()) {
    const [b, a] = [before[i] ?? null, after[i] ?? null];
    assert.ok(b === null ? a === null : a !== null && b.equals(a), `${path} changed`);
  }
}

const badHost: Case[] = [
  { what: '--host sim:/etc/passwd', args: () => ['--host', 'sim:/etc/passwd', 'host', 'inventory'], says: /"\/etc\/passwd" is not a simulated host file: not JSON/, watch: () => ['/etc/passwd'] },
  { what: '--host sim: a password-like file, changing it', args: (x) => ['--host', `sim:${x.passwd}`, 'pf', 'set', IGB_PF, '--num-vfs', '1'], says: /passwd" is not a simulated host file: not JSON/, watch: (x) => [x.passwd] },
  { what: '--host sim: a directory', args: (x) => ['--host', `sim:${x.directory}`, 'host', 'inventory'], says: /a-directory" is not a simulated host file: it is a directory/, watch: (x) => [x.directory + '.lock'] },
  { what: '--host sim: a directory, changing it', args: (x) => ['--host', `sim:${x.directory}`, 'vf', 'set', IGB_PF, '0', '--vlan', '5'], says: /is a directory/, watch: (x) => [x.directory + '.lock'] },
  { what: '--host sim: binary garbage', args: (x) => ['--host', `sim:${x.garbage}`, 'host', 'inventory'], says: /garbage.json" is not a simulated host file: not JSON/, watch: (x) => [x.garbage] },
  { what: '--host sim: a 65 MB file', args: (x) => ['--host', `sim:${x.huge}`, 'host', 'inventory'], says: /huge.json" is not a simulated host file: it is 65 MB, above the 64 MB/, watch: (x) => [x.huge] },
  { what: '--host sim: JSON of another shape', args: (x) => ['--host', `sim:${x.shape}`, 'host', 'inventory'], says: /shape.json" is not a simulated host file: pfs\[0\]\.pciAddress is not a string/, watch: (x) => [x.shape] },
  { what: '--host sim: a file that does not exist', args: (x) => ['--host', `sim:${x.missing}`, 'host', 'inventory'], says: /NOT_FOUND: no simulated host at ".*missing.json" \(create one with sim init\)/, watch: (x) => [x.missing] },
  { what: '--host sim: with no file', args: () => ['--host', 'sim:', 'host', 'inventory'], says: /--host must be "linux" or "sim:FILE", got "sim:"/ },
  { what: '--host of another kind', args: () => ['--host', 'kvm:/x', 'host', 'inventory'], says: /--host must be "linux" or "sim:FILE"/ },
  { what: '--host a megabyte long', args: () => ['--host', 'z'.repeat(100_000), 'host', 'inventory'], says: /--host must be "linux" or "sim:FILE", got "z+…"/ },
];

const simInit: Case[] = [
  { what: 'sim init over an existing host', args: (x) => ['sim', 'init', x.igb, '--profile', 'ice'], says: /already exists; sim init does not overwrite .*--force/ },
  { what: 'sim init into a directory', args: (x) => ['sim', 'init', x.directory, '--profile', 'ice', '--force'], says: /a-directory" is a directory or device; sim init writes a simulated host to a file/, watch: (x) => [join(x.directory, 'x')] },
  { what: 'sim init where no directory is', args: (x) => ['sim', 'init', join(x.missing, 'h.json'), '--profile', 'ice'], says: /cannot write ".*h.json": its directory does not exist/, watch: (x) => [x.missing] },
  ...(
    [
      ['an unknown profile', ['--profile', 'e1000'], /unknown sim profile "e1000" \(one of: igb, ixgbe, i40e, ice, mlx5, bnxt\)/],
      ['no profile', [], /required option '--profile/],
      ['--pfs 0', ['--profile', 'ice', '--pfs', '0'], /--pfs must be between 1 and 64, got 0/],
      ['--pfs 65', ['--profile', 'ice', '--pfs', '65'], /--pfs must be between 1 and 64, got 65/],
      ['--pfs 010', ['--profile', 'ice', '--pfs', '010'], /--pfs must be a whole number in decimal digits only/],
      ['--pfs 0x2', ['--profile', 'ice', '--pfs', '0x2'], /--pfs must be a whole number in decimal digits only/],
      ['--pfs 1e1', ['--profile', 'ice', '--pfs', '1e1'], /--pfs must be a whole number in decimal digits only/],
      ['--pfs " 2"', ['--profile', 'ice', '--pfs', ' 2'], /--pfs must be a whole number in decimal digits only/],
      ['--pfs +2', ['--profile', 'ice', '--pfs', '+2'], /--pfs must be a whole number in decimal digits only/],
      ['--numa-nodes 9', ['--profile', 'ice', '--numa-nodes', '9'], /--numa-nodes must be between 1 and 8, got 9/],
      ['--numa-nodes 0', ['--profile', 'ice', '--numa-nodes', '0'], /--numa-nodes must be between 1 and 8/],
      ['--hostname with upper case and _', ['--profile', 'ice', '--hostname', 'Bad_Host'], /host name must be a lower-case DNS name/],
      ['--hostname with a space', ['--profile', 'ice', '--hostname', 'a b'], /host name must be a lower-case DNS name/],
      ['--hostname starting with -', ['--profile', 'ice', '--hostname', '-x'], /host name must be a lower-case DNS name/],
      ['--hostname of 300 characters', ['--profile', 'ice', '--hostname', 'a'.repeat(300)], /host name must be a lower-case DNS name/],
    ] as Array<[string, string[], RegExp]>
  ).map(([what, flags, says]): Case => {
    let target = '';
    return {
      what: `sim init with ${what}`,
      args: () => ['sim', 'init', (target = fresh()), ...flags],
      says,
      // The path is chosen when args are built; watch it after that.
      watch: () => [target],
    };
  }),
];

const inventory: Case[] = [
  { what: 'host inventory -o xml', args: igb('host', 'inventory', '-o', 'xml'), says: /'xml' is invalid.*table, json, yaml/ },
  { what: 'host inventory with an argument', args: igb('host', 'inventory', 'ens1f0'), says: /too many arguments/ },
  { what: 'host inventory --stats=maybe', args: igb('host', 'inventory', '--stats=maybe'), says: /--stats/ },
];

const pfSet: Case[] = [
  { what: 'pf set --num-vfs above sriov_totalvfs', args: igb('pf', 'set', IGB_PF, '--num-vfs', '8'), says: /VF count for ens1f0 must be between 0 and 7, got 8/ },
  { what: 'pf set --num-vfs 010', args: igb('pf', 'set', IGB_PF, '--num-vfs', '010'), says: /VF count must be a whole number in decimal digits only .*got "010"/ },
  { what: 'pf set --num-vfs 0x10', args: igb('pf', 'set', IGB_PF, '--num-vfs', '0x10'), says: /VF count must be a whole number in decimal digits only/ },
  { what: 'pf set --num-vfs 1e3', args: igb('pf', 'set', IGB_PF, '--num-vfs', '1e3'), says: /VF count must be a whole number in decimal digits only/ },
  { what: 'pf set --num-vfs " 5"', args: igb('pf', 'set', IGB_PF, '--num-vfs', ' 5'), says: /VF count must be a whole number in decimal digits only/ },
  { what: 'pf set --num-vfs +5', args: igb('pf', 'set', IGB_PF, '--num-vfs', '+5'), says: /VF count must be a whole number in decimal digits only/ },
  { what: 'pf set --num-vfs -1', args: igb('pf', 'set', IGB_PF, '--num-vfs=-1'), says: /VF count must be between 0 and 4096, got -1/ },
  { what: 'pf set --num-vfs four', args: igb('pf', 'set', IGB_PF, '--num-vfs', 'four'), says: /VF count must be a whole number/ },
  { what: 'pf set --autoprobe maybe', args: igb('pf', 'set', IGB_PF, '--autoprobe', 'maybe'), says: /autoprobe must be on or off, got "maybe"/ },
  { what: 'pf set --mtu 67', args: igb('pf', 'set', IGB_PF, '--mtu', '67'), says: /MTU must be between 68 and 65535, got 67/ },
  { what: 'pf set --mtu 09000', args: igb('pf', 'set', IGB_PF, '--mtu', '09000'), says: /MTU must be a whole number in decimal digits only/ },
  { what: 'pf set with nothing to set', args: igb('pf', 'set', IGB_PF), says: /pf set needs --num-vfs, --autoprobe or --mtu/ },
  { what: 'pf set on an interface name with ;', args: igb('pf', 'set', 'ens1f0;reboot', '--num-vfs', '1'), says: /interface name "ens1f0;reboot" is not valid/ },
  { what: 'pf set on an interface name of 16 characters', args: igb('pf', 'set', 'e'.repeat(16), '--num-vfs', '1'), says: /interface name "e{16}" is not valid \(1-15/ },
  { what: 'pf set on ../x', args: igb('pf', 'set', '../x', '--num-vfs', '1'), says: /interface name "..\/x" is not valid/ },
  { what: 'pf set on an interface that does not exist', args: igb('pf', 'set', 'eth9', '--num-vfs', '1'), says: /NOT_FOUND: no PCI network interface named eth9/ },
  { what: 'pf set on a short PCI address', args: igb('pf', 'set', '0000:3b:00', '--num-vfs', '1'), says: /interface name "0000:3b:00" is not valid/ },
  { what: 'pf set on a PCI address with no PF', args: igb('pf', 'set', '0000:99:00.0', '--num-vfs', '1'), says: /NOT_SRIOV_PF: 0000:99:00.0 is not an SR-IOV physical function/ },
  { what: 'pf set on a VF', args: igb('pf', 'set', 'ens1f0v0', '--num-vfs', '1'), says: /NOT_SRIOV_PF: ens1f0v0 is not an SR-IOV physical function/ },
];

const vfSet: Case[] = [
  { what: 'vf set --mac too short', args: igb('vf', 'set', IGB_PF, '0', '--mac', '02:5f:00:00:01'), says: /MAC "02:5f:00:00:01" is not a MAC address \(expected xx:xx:xx:xx:xx:xx\)/ },
  { what: 'vf set --mac multicast', args: igb('vf', 'set', IGB_PF, '0', '--mac', '01:00:5e:00:00:01'), says: /MAC 01:00:5e:00:00:01 is multicast/ },
  { what: 'vf set --mac broadcast', args: igb('vf', 'set', IGB_PF, '0', '--mac', 'ff:ff:ff:ff:ff:ff'), says: /MAC ff:ff:ff:ff:ff:ff is multicast/ },
  { what: 'vf set --mac not hex', args: igb('vf', 'set', IGB_PF, '0', '--mac', 'zz:00:00:00:00:01'), says: /MAC "zz:00:00:00:00:01" is not a MAC address/ },
  { what: 'vf set --mac of 100 KB', args: igb('vf', 'set', IGB_PF, '0', '--mac', '0'.repeat(100_000)), says: /MAC "0{40}…" is not a MAC address/ },
  { what: 'vf set --mac another VF has', args: ice('vf', 'set', ICE_PF, '1', '--mac', '02:00:00:00:00:01'), says: /CONFLICT: ens1f0: MAC 02:00:00:00:00:01 for ens1f0 vf 1 is already on vf 0/, watch: onIce },
  { what: 'vf set --vlan 4095', args: igb('vf', 'set', IGB_PF, '0', '--vlan', '4095'), says: /VLAN must be between 0 and 4094, got 4095/ },
  { what: 'vf set --vlan -1', args: igb('vf', 'set', IGB_PF, '0', '--vlan=-1'), says: /VLAN must be between 0 and 4094, got -1/ },
  { what: 'vf set --vlan 010', args: igb('vf', 'set', IGB_PF, '0', '--vlan', '010'), says: /VLAN must be a whole number in decimal digits only/ },
  { what: 'vf set --vlan 0x10', args: igb('vf', 'set', IGB_PF, '0', '--vlan', '0x10'), says: /VLAN must be a whole number in decimal digits only/ },
  { what: 'vf set --vlan 1e3', args: igb('vf', 'set', IGB_PF, '0', '--vlan', '1e3'), says: /VLAN must be a whole number in decimal digits only/ },
  { what: 'vf set --vlan blue', args: igb('vf', 'set', IGB_PF, '0', '--vlan', 'blue'), says: /VLAN must be a whole number/ },
  { what: 'vf set --qos 8', args: igb('vf', 'set', IGB_PF, '0', '--vlan', '10', '--qos', '8'), says: /QoS must be between 0 and 7, got 8/ },
  { what: 'vf set --qos without --vlan', args: igb('vf', 'set', IGB_PF, '0', '--qos', '3'), says: /--qos and --vlan-proto need --vlan/ },
  { what: 'vf set --vlan-proto 802.1x', args: igb('vf', 'set', IGB_PF, '0', '--vlan', '10', '--vlan-proto', '802.1x'), says: /VLAN protocol must be 802.1Q or 802.1ad, got "802.1x"/ },
  { what: 'vf set --vlan-proto 802.1ad on igb', args: igb('vf', 'set', IGB_PF, '0', '--vlan', '10', '--vlan-proto', '802.1ad'), says: /UNSUPPORTED: igb does not support VLAN protocol 802.1ad/ },
  { what: 'vf set --max-tx-rate above the link speed', args: igb('vf', 'set', IGB_PF, '0', '--max-tx-rate', '5000'), says: /rate 5000 Mbps is above the link speed of 1000 Mbps/ },
  { what: 'vf set --max-tx-rate above 400G', args: igb('vf', 'set', IGB_PF, '0', '--max-tx-rate', '400001'), says: /max tx rate must be between 0 and 400000/ },
  { what: 'vf set --max-tx-rate 1e3', args: igb('vf', 'set', IGB_PF, '0', '--max-tx-rate', '1e3'), says: /max tx rate must be a whole number in decimal digits only/ },
  { what: 'vf set --max-tx-rate 10.5', args: igb('vf', 'set', IGB_PF, '0', '--max-tx-rate', '10.5'), says: /max tx rate must be a whole number in decimal digits only/ },
  { what: 'vf set --min-tx-rate on igb', args: igb('vf', 'set', IGB_PF, '0', '--min-tx-rate', '100'), says: /UNSUPPORTED: igb does not support minTxRateMbps/ },
  { what: 'vf set --min-tx-rate above --max-tx-rate', args: ice('vf', 'set', ICE_PF, '1', '--min-tx-rate', '500', '--max-tx-rate', '100'), says: /min tx rate 500 Mbps is above max tx rate 100 Mbps/, watch: onIce },
  { what: 'vf set --spoofchk maybe', args: igb('vf', 'set', IGB_PF, '0', '--spoofchk', 'maybe'), says: /spoofChk must be on or off, got "maybe"/ },
  { what: 'vf set --trust 2', args: igb('vf', 'set', IGB_PF, '0', '--trust', '2'), says: /trust must be on or off, got "2"/ },
  { what: 'vf set --link-state up', args: igb('vf', 'set', IGB_PF, '0', '--link-state', 'up'), says: /link state must be auto, enable or disable, got "up"/ },
  { what: 'vf set on VF 4 of 4', args: igb('vf', 'set', IGB_PF, '4', '--vlan', '5'), says: /VF index on ens1f0 must be between 0 and 3, got 4/ },
  { what: 'vf set on VF 01', args: igb('vf', 'set', IGB_PF, '01', '--vlan', '5'), says: /VF index must be a whole number in decimal digits only/ },
  { what: 'vf set on VF x', args: igb('vf', 'set', IGB_PF, 'x', '--vlan', '5'), says: /VF index must be a whole number/ },
  { what: 'vf set on a PF without VFs', args: igb('vf', 'set', 'ens1f1', '0', '--vlan', '5'), says: /ens1f1 has no VFs to configure/ },
  { what: 'vf set with nothing to set', args: igb('vf', 'set', IGB_PF, '0'), says: /vf set needs at least one setting/ },
  { what: 'vf set with an unknown option', args: igb('vf', 'set', IGB_PF, '0', '--colour', 'red'), says: /unknown option '--colour'/ },
];

const vfBind: Case[] = [
  { what: 'vf bind --driver ice (the PF driver)', args: ice('vf', 'bind', ICE_PF, '1', '--driver', 'ice'), says: /driver "ice" cannot drive a VF of ens1f0 \(PF driver ice\); choose one of kernel, vfio-pci, iavf/, watch: onIce },
  { what: 'vf bind --driver igb (the PF driver)', args: igb('vf', 'bind', IGB_PF, '1', '--driver', 'igb'), says: /driver "igb" cannot drive a VF of ens1f0 \(PF driver igb\); choose one of kernel, vfio-pci, igbvf/ },
  { what: "vf bind --driver of another family's VFs", args: igb('vf', 'bind', IGB_PF, '1', '--driver', 'iavf'), says: /driver "iavf" cannot drive a VF of ens1f0/ },
  { what: 'vf bind --driver ../evil', args: igb('vf', 'bind', IGB_PF, '1', '--driver', '../evil'), says: /driver "..\/evil" cannot drive a VF/ },
  { what: 'vf bind --driver ""', args: igb('vf', 'bind', IGB_PF, '1', '--driver', ''), says: /driver "" cannot drive a VF/ },
  { what: 'vf bind VF 9', args: igb('vf', 'bind', IGB_PF, '9', '--driver', 'vfio-pci'), says: /VF index on ens1f0 must be between 0 and 3, got 9/ },
  { what: 'vf bind on a PF without VFs', args: igb('vf', 'bind', 'ens1f1', '0', '--driver', 'vfio-pci'), says: /ens1f1 has no VFs \(create them with pf set ens1f1 --num-vfs N\)/ },
  { what: 'vf bind without --driver', args: igb('vf', 'bind', IGB_PF, '1'), says: /required option '--driver/ },
];

const head = `policies:\n  - name: fabric-a\n    selector: { pfNames: [${IGB_PF}] }\n`;
const apply = (text: string, host = igb) => async () => host('host', 'apply', '-f', await policy(text))(f);

/** host apply cases build their policy file first, hence async args. */
interface ApplyCase {
  what: string;
  args: () => Promise<string[]>;
  says: RegExp;
}

const hostApply: ApplyCase[] = [
  { what: 'YAML that does not parse', args: apply('policies: [\n'), says: /policy-\d+\.yaml:2: not valid YAML/ },
  { what: 'a tab as indentation', args: apply('policies:\n\t- name: a\n'), says: /policy-\d+\.yaml:2: not valid YAML: Tabs are not allowed/ },
  { what: 'a key given twice', args: apply(`${head}    numVfs: 2\n    numVfs: 3\n`), says: /policy-\d+\.yaml:5: not valid YAML: Map keys must be unique/ },
  { what: 'numVfs 0x10', args: apply(`${head}    numVfs: 0x10\n`), says: /policy-\d+\.yaml:4: "0x10" is not a decimal whole number/ },
  { what: 'numVfs 010', args: apply(`${head}    numVfs: 010\n`), says: /policy-\d+\.yaml:4: "010" is not a decimal whole number/ },
  { what: 'numVfs above sriov_totalvfs', args: apply(`${head}    numVfs: 8\n`), says: /policy fabric-a: numVfs 8 is above ens1f0's sriov_totalvfs of 7/ },
  { what: 'numVfs -1', args: apply(`${head}    numVfs: -1\n`), says: /policy-\d+\.yaml:4: policies\[0\]\.numVfs: numVfs must be 0 \(remove all VFs\) or more/ },
  { what: 'numVfs 0 with per-VF settings', args: apply(`${head}    numVfs: 0\n    vfs:\n      "0": { vlan: 5 }\n`), says: /policy-\d+\.yaml:6: policies\[0\]\.vfs: policy fabric-a: numVfs 0 removes every VF/ },
  { what: 'a VLAN of 5000', args: apply(`${head}    numVfs: 4\n    vfs:\n      0-3: { vlan: 5000 }\n`), says: /policy-\d+\.yaml:6: policies\[0\]\.vfs\["0-3"\]\.vlan: VLAN must be between 0 and 4094, got 5000/ },
  { what: 'one MAC for a range of VFs', args: apply(`${head}    numVfs: 4\n    vfs:\n      0-1: { mac: "02:00:00:00:00:05" }\n`), says: /vfs\["0-1"\]\.mac: MAC 02:00:00:00:00:05 is given to policy fabric-a VF 0 and policy fabric-a VF 1/ },
  { what: 'a rate above the link speed', args: apply(`${head}    numVfs: 4\n    vfs:\n      "0": { maxTxRateMbps: 5000 }\n`), says: /ens1f0 vf 0: rate 5000 Mbps is above the link speed of 1000 Mbps/ },
  { what: 'an unknown field', args: apply(`${head}    numVfs: 4\n    numvfs: 4\n`), says: /policy-\d+\.yaml:5: policies\[0\]\.numvfs: Unrecognized key: "numvfs"/ },
  { what: 'an empty selector', args: apply('policies:\n  - name: a\n    selector: {}\n    numVfs: 1\n'), says: /policy-\d+\.yaml:3: policies\[0\]\.selector: policy a: the selector is empty/ },
  { what: 'a vendor id that is no hex', args: apply('policies:\n  - name: a\n    selector: { vendor: intel }\n    numVfs: 1\n'), says: /policy-\d+\.yaml:3: policies\[0\]\.selector\.vendor: must be a 4-digit hex id/ },
  { what: 'a bad PCI address in the selector', args: apply('policies:\n  - name: a\n    selector: { pciAddresses: ["3b:00"] }\n    numVfs: 1\n'), says: /selector\.pciAddresses\[0\]: "3b:00" is not a PCI address/ },
  { what: 'a bad interface name in the selector', args: apply('policies:\n  - name: a\n    selector: { pfNames: ["ens1f0 x"] }\n    numVfs: 1\n'), says: /selector\.pfNames\[0\]: interface name "ens1f0 x" is not valid/ },
  { what: 'an MTU of 60', args: apply(`${head}    numVfs: 1\n    mtu: 60\n`), says: /policies\[0\]\.mtu: mtu must be 68-65535/ },
  { what: 'a policy that matches no PF', args: apply('policies:\n  - name: fabric-z\n    selector: { pfNames: [ens9f0] }\n    numVfs: 1\n'), says: /NOT_FOUND: policy fabric-z matched no PF \(selector: pfNames=ens9f0\)/ },
  { what: 'a policy file that is /etc/passwd-like', args: async () => igb('host', 'apply', '-f', f.passwd)(f), says: /passwd:1: must be a map with a policies list|passwd:1: .*Unrecognized key/ },
  { what: 'a policy file that is a directory', args: async () => igb('host', 'apply', '-f', f.directory)(f), says: /policy file ".*a-directory" is a directory or device, not a file/ },
  { what: 'a policy file that does not exist', args: async () => igb('host', 'apply', '-f', f.missing)(f), says: /cannot read policy file ".*missing.json": ENOENT/ },
  { what: 'a policy file of 65 MB', args: async () => igb('host', 'apply', '-f', f.huge)(f), says: /policy file ".*huge.json" is \d+ bytes, above the 1048576 a node policy takes/ },
];

describe('bad local input: exit 2, one line naming the field, host unchanged', () => {
  const groups: Array<[string, Case[]]> = [
    ['--host', badHost],
    ['sim init', simInit],
    ['host inventory', inventory],
    ['pf set', pfSet],
    ['vf set', vfSet],
    ['vf bind', vfBind],
  ];
  for (const [group, cases] of groups) {
    // Cases of a group run side by side: each is refused, so none may change the files the others watch.
    describe(group, { concurrency: 4 }, () => {
      for (const c of cases) it(c.what, () => refused(c));
    });
  }

  describe('host apply', { concurrency: 4 }, () => {
    for (const c of hostApply) {
      it(c.what, async () => {
        const args = await c.args();
        await refused({ what: c.what, args: () => args, says: c.says, watch: (x) => [x.igb, x.ice] });
      });
    }
  });

  it('covers at least 60 cases', () => {
    const total = groups.reduce((n, [, cases]) => n + cases.length, 0) + hostApply.length;
    assert.ok(total >= 60, `${total} cases`);
  });
});
