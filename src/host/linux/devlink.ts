/**
 * devlink on a real host, through the `devlink` tool (iproute2): the eswitch
 * mode, the ports (a VF's representor in switchdev mode) and the rate
 * objects, leaves (a VF port's tx_share/tx_max) and nodes (groups). Every
 * value is checked before it becomes an argument; refusals come back as
 * KernelErrors with the errno the kernel answered and its extack message.
 */
import { invalid } from '../errors.js';
import type { EswitchMode, RateLimits } from '../model.js';
import { KernelError, type Devlink, type DevlinkPortFacts, type DevlinkRateFacts, type RateChange } from '../ports.js';
import { devlinkHandle, parseRateNodeName } from '../validate.js';
import { devlinkError, parseEswitchMode, parsePorts, parseRateObject, parseRates, rateArgs } from './devlink-output.js';
import { run, type RunResult } from './exec.js';

const TIMEOUT_MS = 10_000;

export class LinuxDevlink implements Devlink {
  constructor(private readonly devlinkPath = 'devlink') {}

  /** `devlink -j dev eswitch show <dev>`; null when there is no eswitch (or no devlink). */
  async eswitchMode(device: string): Promise<EswitchMode | null> {
    const handle = devlinkHandle(device);
    try {
      const res = await run(this.devlinkPath, ['-j', 'dev', 'eswitch', 'show', handle], { timeoutMs: 5_000 });
      // "kernel answers: No such device" and {"dev":{}} when the driver has no eswitch.
      return res.code === 0 ? parseEswitchMode(JSON.parse(res.stdout), handle) : null;
    } catch {
      // ENOENT: devlink is not installed; bad JSON or a timeout: no usable answer.
      return null;
    }
  }

  /** `devlink dev eswitch set <dev> mode legacy|switchdev` */
  async setEswitchMode(device: string, mode: EswitchMode): Promise<void> {
    if (mode !== 'legacy' && mode !== 'switchdev') throw invalid(`eswitch mode ${JSON.stringify(mode)} is not legacy or switchdev`, String(mode));
    await this.devlink(['dev', 'eswitch', 'set', devlinkHandle(device), 'mode', mode]);
  }

  /** `devlink -j port show`, this device's ports (iproute2 6.1 shows one port or all). */
  async ports(device: string): Promise<DevlinkPortFacts[]> {
    const handle = devlinkHandle(device);
    return parsePorts(await this.json(['-j', 'port', 'show']), handle);
  }

  /** `devlink -j port function rate show`, this device's leaves and nodes; [] on a kernel without devlink rate. */
  async rates(device: string): Promise<DevlinkRateFacts[]> {
    const handle = devlinkHandle(device);
    try {
      return parseRates(await this.json(['-j', 'port', 'function', 'rate', 'show']), handle);
    } catch (e) {
      if (e instanceof KernelError && e.errno === 'EOPNOTSUPP') return [];
      throw e;
    }
  }

  /** `devlink port function rate add <dev>/<name> tx_share Nmbit tx_max Nmbit` */
  async addRateNode(device: string, name: string, limits: RateLimits): Promise<void> {
    const object = `${devlinkHandle(device)}/${parseRateNodeName(name)}`;
    await this.devlink(['port', 'function', 'rate', 'add', object, ...rateArgs(limits)]);
  }

  /**
   * `devlink port function rate set <object> [tx_share Nmbit] [tx_max Nmbit] [parent <node> | noparent]`.
   * The kernel applies the attributes one by one: when a later one is
   * refused, the earlier ones have taken effect (read back). The devlink
   * tool refuses tx_share above a non-zero tx_max (EINVAL), before the kernel.
   */
  async setRate(object: string, change: RateChange): Promise<void> {
    const target = parseRateObject(object).object;
    const args = rateArgs(change);
    if (change.parent !== undefined) args.push(...(change.parent === null ? ['noparent'] : ['parent', parseRateNodeName(change.parent)]));
    if (args.length === 0) return; // nothing to change; devlink would refuse an empty set
    await this.devlink(['port', 'function', 'rate', 'set', target, ...args]);
  }

  /** `devlink port function rate del <dev>/<name>` (EBUSY while the node has children). */
  async deleteRateNode(device: string, name: string): Promise<void> {
    const object = `${devlinkHandle(device)}/${parseRateNodeName(name)}`;
    await this.devlink(['port', 'function', 'rate', 'del', object]);
  }

  /** Runs devlink; its result, or the refusal as a KernelError. */
  private async devlink(args: string[]): Promise<RunResult> {
    const operation = `devlink ${args.filter((a) => a !== '-j').join(' ')}`;
    let res: RunResult;
    try {
      res = await run(this.devlinkPath, args, { timeoutMs: TIMEOUT_MS });
    } catch (e) {
      if (e instanceof KernelError) throw e; // the timeout
      const errno = (e as NodeJS.ErrnoException).code ?? 'EIO';
      throw new KernelError(errno, operation, `${operation}: cannot run ${this.devlinkPath} (${errno}); devlink comes with iproute2`);
    }
    if (res.code !== 0) throw devlinkError(operation, res.stderr, res.code);
    return res;
  }

  private async json(args: string[]): Promise<unknown> {
    const res = await this.devlink(args);
    try {
      return JSON.parse(res.stdout);
    } catch {
      throw new KernelError('EPROTO', `devlink ${args.join(' ')}`, `devlink ${args.join(' ')}: output is not JSON`);
    }
  }
}
