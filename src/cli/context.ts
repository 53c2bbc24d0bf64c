/**
 * What every command handler gets: the global options, output in the chosen
 * format, and either the local host (local mode) or the controller's API
 * (remote mode, chosen by --server / SRIOV_SERVER / the config file).
 */
import type { Command } from 'commander';
import type { SriovHost, Progress } from '../host/configurator.js';
import { invalid } from '../host/errors.js';
import { createHost } from './local-host.js';
import { emit, streamList, type Cell, type OutputFormat } from './output.js';
import { ApiClient, type Query } from './remote/client.js';
import { configPath, resolveConnection } from './remote/config.js';

export interface GlobalOptions {
  /** Local mode: `linux` or `sim:FILE`. Remote mode: a host name (host apply, alloc create/list). */
  host?: string;
  sysfsRoot?: string;
  output: OutputFormat;
  server?: string;
  tokenFile?: string;
}

export class CliContext {
  /** The command being run (`alloc create`), for messages; set by main's preAction hook. */
  command = 'sriovctl';
  private connection: Promise<ApiClient | null> | undefined;

  constructor(private readonly program: Command) {}

  get opts(): GlobalOptions {
    return this.program.opts<GlobalOptions>();
  }

  emit<T>(value: T, render: (v: T) => string): void {
    emit(this.opts.output, value, render);
  }

  /**
   * A paged list from the controller, followed page by page and printed as
   * the pages come (`keep` drops items the server cannot filter out).
   */
  async list<T>(path: string, query: Query, header: string[], row: (item: T) => Cell[], keep: (item: T) => boolean = () => true): Promise<number> {
    const api = await this.api();
    async function* kept(): AsyncGenerator<T[]> {
      for await (const page of api.pages<T>(path, query)) yield page.filter(keep);
    }
    return streamList(this.opts.output, kept(), header, row);
  }

  /** A 204 has no body to print; say what went, in the chosen format. */
  deleted(object: string): void {
    this.emit({ deleted: object }, () => `${object} deleted\n`);
  }

  /** The controller's API in remote mode, null in local mode. */
  remote(): Promise<ApiClient | null> {
    this.connection ??= resolveConnection(this.opts).then((c) => c && new ApiClient(c));
    return this.connection;
  }

  /** The controller's API; refuses in local mode, where these commands have nothing to talk to. */
  async api(): Promise<ApiClient> {
    const api = await this.remote();
    if (!api) throw invalid(`${this.command} needs --server URL (or SRIOV_SERVER, or server: in ${configPath()})`);
    return api;
  }

  /** The host this process runs on (or a simulated one); these commands never go through the controller. */
  localHost(progress?: Progress): SriovHost {
    if (this.opts.server) {
      throw invalid(`${this.command} configures this host directly and does not take --server; use the controller's commands (host apply, alloc ...) instead`);
    }
    return createHost(this.opts, progress);
  }
}
