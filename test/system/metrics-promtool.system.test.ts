/**
 * /metrics of a real sriovd on the demo fleet: Debian's `promtool check
 * metrics` (the prometheus package) finds nothing to complain about, and
 * the values are the API's: hosts, VFs and allocations by state, committed
 * bandwidth and capacity per PF as `GET /v1/hosts` summarises them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { HostSummary } from '../../src/controller/host-summaries.js';
import type { Allocation } from '../../src/domain/types.js';
import { api, eventually, startDaemon, type Daemon } from '../helpers/daemon.js';
import { parseProm, samplesOf, value, type PromSample } from '../helpers/prom-text.js';

const PROMTOOL = '/usr/bin/promtool';

/** promtool's verdict on `text`: its exit code and what it printed. */
function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => (output += d));
    proc.stderr.on('data', (d: Buffer) => (output += d));
    proc.once('error', reject);
    proc.once('close', (code) => resolve({ code, output }));
    proc.stdin.end(text);
  });
}

describe('/metrics on the demo fleet', () => {
  let dir: string;
  let daemon: Daemon;
  let admin: string;
  const scrape = async () => (await fetch(`${daemon.url}/metrics`)).text();
  const get = async <T>(path: string) => {
    const r = await api<T>(daemon.url, admin, 'GET', path);
    assert.equal(r.status, 200, path);
    return r.body;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vfleet-metrics-promtool-'));
    daemon = await startDaemon(['--data-dir', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    admin = (await readFile(join(dir, 'data', 'admin.token'), 'utf8')).trim();
    // The demo's containers are attached, and its agent has reported a whole pass.
    await eventually('the demo fleet to settle', 60_000, async () => {
      const all = await get<Allocation[]>('/v1/allocations');
      const samples = parseProm(await scrape());
      const passes = samplesOf(samples, 'vfleet_agent_reconcile_duration_seconds_count');
      return all.length > 0 && all.every((a) => a.state === 'attached') && passes.some((s) => s.value > 0) ? true : undefined;
    });
  });
  after(async () => {
    await daemon?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('passes promtool check metrics with no complaint', async () => {
    const { code, output } = await promtoolCheck(await scrape());
    assert.equal(output.trim(), '', output);
    assert.equal(code, 0);
  });

  it('gives the values the API gives', async () => {
    const samples: PromSample[] = parseProm(await scrape());
    const hosts = await get<HostSummary[]>('/v1/hosts');
    const info = await get<{ version: string; controllerHost: string }>('/v1/info');
    assert.equal(value(samples, 'vfleet_build_info', { version: info.version, node: info.controllerHost, store: 'sqlite', nodejs: process.version }), 1);
    for (const state of ['ready', 'unreachable']) assert.equal(value(samples, 'vfleet_hosts', { state }), hosts.filter((h) => h.state === state).length, state);
    for (const host of hosts) {
      assert.ok((value(samples, 'vfleet_host_heartbeat_age_seconds', { host: host.name }) ?? -1) >= 0, host.name);
      for (const pf of host.pfs) {
        const labels = { host: host.name, pf: pf.name };
        assert.equal(value(samples, 'vfleet_vfs', { ...labels, state: 'allocated' }), pf.vfs.allocated, pf.name);
        assert.equal(value(samples, 'vfleet_vfs', { ...labels, state: 'free' }), pf.vfs.free, pf.name);
        assert.equal(value(samples, 'vfleet_pf_committed_min_rate_mbps', labels), pf.committedMbps, pf.name);
        assert.equal(value(samples, 'vfleet_pf_capacity_mbps', labels), pf.capacityMbps ?? undefined, pf.name);
        assert.equal(value(samples, 'vfleet_pf_link_speed_mbps', labels), pf.linkSpeedMbps ?? undefined, pf.name);
      }
    }
    for (const state of ['pending', 'configured', 'attached', 'releasing', 'failed']) {
      assert.equal(value(samples, 'vfleet_allocations', { state }), (await get<Allocation[]>(`/v1/allocations?state=${state}`)).length, state);
    }
    // The demo's networks cap their VFs: what is committed is the networks' max rates of the allocations on each PF.
    const allocations = await get<Allocation[]>('/v1/allocations');
    const networks = new Map((await get<Array<{ name: string; maxTxRateMbps: number }>>('/v1/networks')).map((n) => [n.name, n.maxTxRateMbps]));
    const committedMax = samplesOf(samples, 'vfleet_pf_committed_max_rate_mbps').reduce((sum, s) => sum + s.value, 0);
    assert.equal(committedMax, allocations.reduce((sum, a) => sum + (networks.get(a.network) ?? 0), 0));
  });
});
