/**
 * The reference CNI client, `cnitool` on libcni 1.3.0 (built by
 * test/cni/build-tools.sh), driving CNI plugins the way a container runtime
 * does: configuration lists from NETCONFPATH, plugins from CNI_PATH
 * (dist/vfleet-cni and Debian's reference plugins in /usr/lib/cni), results
 * cached by libcni between ADD, CHECK, DEL and GC.
 *
 * cnitool names the container after its namespace path
 * (`cnitool-<sha512(path)[:10]>`), so one namespace path is one container.
 * Each CniTool has its own configuration and cache directories, so suites
 * never share libcni state with each other or with /var/lib/cni.
 */
import { createHash } from 'node:crypto';
import { access, constants, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runProcess } from './cli.js';

export const TOOLS_DIR = process.env.VFLEET_TOOLS || '/var/cache/vfleet-tools';
export const CNITOOL = join(TOOLS_DIR, 'bin', 'cnitool');
/** Debian's containernetworking-plugins (1.1.1: CNI up to 1.0.0). */
export const REFERENCE_PLUGINS = '/usr/lib/cni';
export const VFLEET_CNI = fileURLToPath(new URL('../../../dist/vfleet-cni', import.meta.url));

export type CniToolCommand = 'add' | 'check' | 'del' | 'gc' | 'status';

/** One entry of CNI's `cni.dev/valid-attachments`. */
export interface GcAttachment {
  containerID: string;
  ifname: string;
}

export interface CniToolRun {
  /** cnitool's exit status: 0, or 1 for any error. */
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as JSON (the result of ADD); null when cnitool printed nothing. */
  json: Record<string, unknown> | null;
  /** The failing plugin's CNI error code (the patched cnitool's `CNI error code N` line); null when there is none. */
  cniCode: number | null;
}

export interface CniToolOptions {
  /** CNI_IFNAME; default net1. */
  ifname?: string;
  /** CAP_ARGS: the runtime's capability arguments (`mac`, `ips`, `deviceID`, ...). */
  capabilityArgs?: Record<string, unknown>;
  /** CNI_ARGS, `K=V;K=V`. */
  cniArgs?: string;
  /** libcni's result cache for this call instead of this CniTool's own (another runtime, or one that lost its cache). */
  cacheDir?: string;
  /** For `gc`: the attachments to keep. Without it cnitool sends none, as upstream's does. */
  validAttachments?: GcAttachment[];
}

/** A network configuration list as a runtime reads it from NETCONFPATH. */
export interface Conflist {
  name: string;
  cniVersion?: string;
  cniVersions?: string[];
  plugins: Array<Record<string, unknown>>;
  [field: string]: unknown;
}

/** Fails with what to run when the tools are missing: a suite that needs them must not pass without them. */
export async function assertCniToolsInstalled(): Promise<void> {
  for (const [file, what] of [
    [CNITOOL, 'cnitool: run `bash test/cni/build-tools.sh` as root (VFLEET_TOOLS overrides /var/cache/vfleet-tools)'],
    [join(REFERENCE_PLUGINS, 'tuning'), 'the reference plugins: `apt-get install containernetworking-plugins` (or test/cni/build-tools.sh)'],
    [VFLEET_CNI, 'dist/vfleet-cni: `npm run build:cni`'],
  ] as const) {
    await access(file, constants.X_OK).catch(() => {
      throw new Error(`${file} is missing or not executable; ${what}`);
    });
  }
}

export class CniTool {
  private constructor(
    /** Scratch directory holding the two below; removed by cleanup(). */
    readonly dir: string,
    /** NETCONFPATH. */
    readonly netconfDir: string,
    /** libcni's result cache. */
    readonly cacheDir: string,
    /** CNI_PATH: where plugins are found, in order. */
    readonly pluginPath: string[],
  ) {}

  static async create(pluginPath = [dirname(VFLEET_CNI), REFERENCE_PLUGINS]): Promise<CniTool> {
    const dir = await mkdtemp(join(tmpdir(), 'vfleet-cnitool-'));
    const tool = new CniTool(dir, join(dir, 'net.d'), join(dir, 'cache'), pluginPath);
    await mkdir(tool.netconfDir);
    return tool;
  }

  /** Writes (or replaces) `<name>.conflist` in NETCONFPATH. */
  async writeConflist(conflist: Conflist): Promise<void> {
    await writeFile(join(this.netconfDir, `${conflist.name}.conflist`), JSON.stringify(conflist, null, 2));
  }

  /** A fresh, empty cache directory: a runtime that has no record of earlier ADDs. */
  async emptyCache(): Promise<string> {
    return mkdtemp(join(this.dir, 'cache-'));
  }

  /** The container ID cnitool derives from a namespace path, as the plugin sees it in CNI_CONTAINERID. */
  static containerId(netns: string): string {
    return `cnitool-${createHash('sha512').update(resolve(netns)).digest('hex').slice(0, 20)}`;
  }

  /** `cnitool COMMAND NET NETNS`; gc and status ignore NETNS (cnitool still wants one). */
  async run(command: CniToolCommand, net: string, netns = '/', opts: CniToolOptions = {}): Promise<CniToolRun> {
    const res = await runProcess(CNITOOL, [command, net, netns], { env: this.env(opts) });
    const code = /^CNI error code (\d+)$/m.exec(res.stderr);
    return { ...res, json: res.stdout.trim() ? (JSON.parse(res.stdout) as Record<string, unknown>) : null, cniCode: code ? Number(code[1]) : null };
  }

  /**
   * Built from nothing rather than from process.env: the plugins see only
   * what a runtime gives them (no NODE_EXTRA_CA_CERTS, NODE_OPTIONS, ...).
   * PATH leads with this node, which runs dist/vfleet-cni.
   */
  private env(opts: CniToolOptions): NodeJS.ProcessEnv {
    return {
      PATH: [dirname(process.execPath), process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(':'),
      NETCONFPATH: this.netconfDir,
      CNI_PATH: this.pluginPath.join(':'),
      CNI_CACHE_DIR: opts.cacheDir ?? this.cacheDir,
      CNI_IFNAME: opts.ifname ?? 'net1',
      ...(opts.capabilityArgs ? { CAP_ARGS: JSON.stringify(opts.capabilityArgs) } : {}),
      ...(opts.cniArgs ? { CNI_ARGS: opts.cniArgs } : {}),
      ...(opts.validAttachments ? { CNI_GC_VALID_ATTACHMENTS: JSON.stringify(opts.validAttachments) } : {}),
    };
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
