/**
 * MAC addresses for VFs: a counter under a locally administered prefix,
 * skipping addresses in use. The in-use set is kept in step by the caller
 * (`markUsed` once an allocation is stored, `release` when it is released),
 * so the pool never has to ask the store.
 *
 * `next` hands out an address without marking it used, but moves past it: a
 * second request while the first is still being stored gets another address,
 * and a store write that fails leaves nothing to undo. The cursor only moves
 * forward (wrapping at the end of the space), which also keeps a released
 * MAC from being handed out again soon, while neighbours may still cache it.
 */
import { randomInt } from 'node:crypto';
import { claimConflict, invalid, SriovError } from '../host/errors.js';
import { parseMac } from '../host/validate.js';
import { writeHexOctet } from '../util/hex-text.js';

export const DEFAULT_MAC_PREFIX = '02:5f:00';
/** crypto.randomInt's bound (2^48), above any space a prefix leaves. */
const MAX_RANDOM = 2 ** 48 - 1;

export interface MacPoolOptions {
  /** 1–5 octets, locally administered and unicast. Default 02:5f:00 (24-bit counter). */
  prefix?: string;
  /**
   * Start counting at a random point of the space instead of its start:
   * several controllers sharing a store then hand out different MACs to
   * requests in flight at once, rather than all the same one (which the
   * store would refuse to all but one).
   */
  randomStart?: boolean;
}

export class MacPool {
  readonly prefix: string;
  private readonly suffixOctets: number;
  /** How many MACs the prefix leaves: up to 2^40, within a double's exact integers. */
  private readonly space: number;
  /** The prefix's value, shifted above the counter's octets: a MAC under it is this plus the counter. */
  private readonly base: number;
  /**
   * MACs in use, as 48-bit numbers: 16 bytes kept per allocation, where its
   * text (~70 bytes: the pieces it was joined from, then their flat copy)
   * was kept, and copied by two scavenges before it reached the old space.
   */
  private readonly used = new Set<number>();
  /** The MAC `format` writes: the prefix once, the counter's octets each time (util/hex-text.ts). */
  private readonly text: Buffer;
  private cursor = 0;

  constructor(opts: MacPoolOptions = {}) {
    this.prefix = parsePrefix(opts.prefix ?? DEFAULT_MAC_PREFIX);
    this.suffixOctets = 6 - this.prefix.split(':').length;
    this.space = 2 ** (8 * this.suffixOctets);
    this.text = Buffer.from(`${this.prefix}${':00'.repeat(this.suffixOctets)}`, 'latin1');
    this.base = macValue(this.text.toString('latin1'));
    if (opts.randomStart) this.cursor = randomInt(0, Math.min(this.space, MAX_RANDOM));
  }

  /** The next free MAC under the prefix; NO_CAPACITY when every one is in use. */
  next(): string {
    for (let tried = 0; tried < this.space; tried++) {
      const n = this.cursor;
      this.cursor = (this.cursor + 1) % this.space;
      if (!this.used.has(this.base + n)) return this.format(n);
    }
    throw new SriovError('NO_CAPACITY', `all ${this.space} MACs under prefix ${this.prefix} are in use`, {
      object: this.prefix,
      nothingChanged: true,
    });
  }

  /** Validate a MAC a user asked for; CONFLICT when it is in use. Returns it normalized. */
  checkRequested(mac: string): string {
    const v = parseMac(mac);
    if (this.used.has(macValue(v))) throw claimConflict('mac', `MAC ${v} is in use`, v);
    return v;
  }

  /** Exactly `macs` are in use (memory rebuilt from the store). */
  reset(macs: Iterable<string>): void {
    this.used.clear();
    for (const mac of macs) this.markUsed(mac);
  }

  markUsed(mac: string): void {
    this.used.add(macValue(parseMac(mac)));
  }

  /** False when the MAC was not in use. */
  release(mac: string): boolean {
    return this.used.delete(macValue(parseMac(mac)));
  }

  isUsed(mac: string): boolean {
    return this.used.has(macValue(parseMac(mac)));
  }

  /** Counter `n` under the prefix, as one flat string. */
  private format(n: number): string {
    for (let octet = 5, rest = n; octet >= 6 - this.suffixOctets; octet--, rest = Math.floor(rest / 256)) writeHexOctet(this.text, 3 * octet, rest % 256);
    return this.text.toString('latin1');
  }
}

/** A canonical MAC (`xx:xx:xx:xx:xx:xx`, lower case) as a number, read digit by digit: no pieces of it are made. */
function macValue(mac: string): number {
  let value = 0;
  for (let i = 0; i < 17; i += 3) value = value * 256 + hexDigit(mac.charCodeAt(i)) * 16 + hexDigit(mac.charCodeAt(i + 1));
  return value;
}

/** 0-9, a-f. */
const hexDigit = (code: number): number => (code <= 57 ? code - 48 : code - 87);

/** Lower-cased `xx:..` prefix of 1–5 octets, locally administered, unicast. */
export function parsePrefix(value: string): string {
  const v = value.trim().toLowerCase().replace(/-/g, ':');
  const octets = v.split(':');
  if (octets.length < 1 || octets.length > 5 || !octets.every((o) => /^[0-9a-f]{2}$/.test(o))) {
    throw invalid(`MAC prefix "${value}" must be 1 to 5 octets like 02:5f:00`, value);
  }
  const first = parseInt(octets[0]!, 16);
  if (first & 1) throw invalid(`MAC prefix ${v} is multicast; VF MACs must be unicast`, value);
  if (!(first & 2)) {
    throw invalid(`MAC prefix ${v} is not locally administered (set bit 0x02 of the first octet, e.g. 02:...)`, value);
  }
  return v;
}
