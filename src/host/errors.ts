/**
 * Typed errors with a stable `code`, the object they concern and the cause.
 * The CLI maps `exitCode` straight to the process status: 2 means the request
 * was refused before anything was touched, 1 means an operation failed.
 */
export type ErrorCode =
  | 'INVALID_ARGUMENT'
  | 'NOT_FOUND'
  | 'NOT_SRIOV_PF'
  | 'UNSUPPORTED'
  | 'OUT_OF_RANGE'
  | 'BUSY'
  | 'PERMISSION_DENIED'
  | 'TRY_AGAIN'
  /** The store cannot commit now (etcd lost quorum): nothing was written; retry later. */
  | 'UNAVAILABLE'
  | 'TIMEOUT'
  | 'VERIFY_FAILED'
  | 'HOST_ERROR'
  | 'NO_CAPACITY'
  | 'FORBIDDEN'
  | 'CONFLICT'
  | 'UNAUTHENTICATED';

const REFUSED_UP_FRONT: ReadonlySet<ErrorCode> = new Set([
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'NOT_SRIOV_PF',
  'UNSUPPORTED',
  'OUT_OF_RANGE',
  'NO_CAPACITY',
  'FORBIDDEN',
  'CONFLICT',
  'UNAUTHENTICATED',
]);

/**
 * With CONFLICT: what someone else holds that the request needed. Stable, so
 * callers tell a lost race (another controller took the VF, the MAC or the
 * PF's last guarantee bandwidth first) from other refusals without reading
 * the message.
 */
export const CLAIM_KINDS = [
  /** The VF is held by another allocation. */
  'vf',
  /** The MAC is held by another allocation. */
  'mac',
  /** The PF's guarantees would exceed its capacity (link speed × bandwidth ratio). */
  'bandwidth',
  /** The redundancy group already has a VF on that PF. */
  'group',
  /** An IP address of the network's pool is leased to another allocation. */
  'lease',
  /** The (physnet, VLAN) belongs to another tenant. */
  'vlan',
  /** The allocation already has an unfinished migration. */
  'migration',
  /** A record with that id, or a token with that hash, already exists. */
  'exists',
] as const;
export type ClaimKind = (typeof CLAIM_KINDS)[number];

export interface ErrorDetails {
  /** What the error is about, e.g. `ens1f0 vf 3` or `0000:3b:00.0`. */
  object?: string;
  /** With CONFLICT: the kind of claim that refused it (see ClaimKind). */
  claim?: ClaimKind;
  /** The kernel errno name behind it, when there is one (`EBUSY`). */
  errno?: string;
  /** For partial failures: what did take effect, and what did not. */
  applied?: string[];
  notApplied?: string[];
  /**
   * With INVALID_ARGUMENT: the request field at fault, as the API names it
   * (`vlan`, `ipam.cidr`, `tenantVlans.0.from`), so a form shows the message there.
   */
  field?: string;
  /** Set when nothing was changed on the host (the request was refused). */
  nothingChanged?: boolean;
  /** Structured facts behind a refusal (e.g. the best bandwidth headroom found). */
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class SriovError extends Error {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'SriovError';
    this.code = code;
    this.details = details;
  }

  /** 2 when the request was refused before touching the host, else 1. */
  get exitCode(): number {
    return REFUSED_UP_FRONT.has(this.code) || this.details.nothingChanged ? 2 : 1;
  }

  override toString(): string {
    const parts = [`${this.code}: ${this.message}`];
    if (this.details.applied?.length) parts.push(`applied: ${this.details.applied.join(', ')}`);
    if (this.details.notApplied?.length) parts.push(`not applied: ${this.details.notApplied.join(', ')}`);
    return parts.join('; ');
  }

  toJSON(): Record<string, unknown> {
    const { cause: _cause, ...rest } = this.details;
    return { code: this.code, message: this.message, ...rest };
  }
}

export function invalid(message: string, object?: string, field?: string): SriovError {
  return new SriovError('INVALID_ARGUMENT', message, field === undefined ? { object } : { object, field });
}

/**
 * Runs `check`, naming `field` on the INVALID_ARGUMENT it throws: the parsers
 * are shared by the CLI and the API and know a value, not where it came from.
 */
export function atField<T>(field: string, check: () => T): T {
  try {
    return check();
  } catch (err) {
    if (err instanceof SriovError && err.code === 'INVALID_ARGUMENT' && err.details.field === undefined) err.details.field = field;
    throw err;
  }
}

/** A CONFLICT because `claim` is held by someone else; nothing was changed. */
export function claimConflict(claim: ClaimKind, message: string, object: string, cause?: unknown): SriovError {
  return new SriovError('CONFLICT', message, { object, claim, nothingChanged: true, ...(cause === undefined ? {} : { cause }) });
}

/** Kernel errno names (as Node reports them on fs writes, or as text from iproute2). */
const ERRNO_CODES: Record<string, ErrorCode> = {
  EOPNOTSUPP: 'UNSUPPORTED',
  ENOTSUP: 'UNSUPPORTED',
  EPROTONOSUPPORT: 'UNSUPPORTED',
  EINVAL: 'HOST_ERROR',
  ERANGE: 'OUT_OF_RANGE',
  EBUSY: 'BUSY',
  EPERM: 'PERMISSION_DENIED',
  EACCES: 'PERMISSION_DENIED',
  EAGAIN: 'TRY_AGAIN',
  ENODEV: 'NOT_FOUND',
  ENOENT: 'NOT_FOUND',
};

export function codeForErrno(errno: string | undefined): ErrorCode {
  return (errno && ERRNO_CODES[errno]) || 'HOST_ERROR';
}

/** The messages iproute2 prints for each errno ("RTNETLINK answers: ..."), mapped back. */
const ERRNO_MESSAGES: Array<[RegExp, string]> = [
  [/Operation not supported/i, 'EOPNOTSUPP'],
  [/Protocol not supported/i, 'EPROTONOSUPPORT'],
  [/Invalid argument/i, 'EINVAL'],
  [/Numerical result out of range/i, 'ERANGE'],
  [/Device or resource busy/i, 'EBUSY'],
  [/File exists/i, 'EEXIST'],
  [/Operation not permitted/i, 'EPERM'],
  [/Permission denied/i, 'EACCES'],
  [/Resource temporarily unavailable/i, 'EAGAIN'],
  [/No such device/i, 'ENODEV'],
  [/Cannot find device/i, 'ENODEV'],
];

export function errnoFromMessage(text: string): string | undefined {
  return ERRNO_MESSAGES.find(([re]) => re.test(text))?.[1];
}
