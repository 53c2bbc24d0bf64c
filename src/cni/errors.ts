/**
 * CNI errors: the spec's well-known codes (0-99) and ours (100+), and the
 * mapping from the daemon's API error codes. The runtime shows `msg` to the
 * user (kubectl describe pod), so it must say what to fix.
 */

export const CniCode = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO_FAILURE: 5,
  DECODE_FAILURE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  /** STATUS only: the plugin cannot serve ADD right now. */
  NOT_AVAILABLE: 50,
  /** STATUS only: nor can it, and existing attachments may lose connectivity. */
  NOT_AVAILABLE_LIMITED: 51,
  NO_CAPACITY: 100,
  CONFLICT: 101,
  NOT_FOUND: 102,
  /** The token is missing, unknown, or not allowed to touch this network. */
  DENIED: 103,
  /** The daemon refused the request's content (bad deviceID, network settings...). */
  REJECTED: 104,
  /** The agent could not attach (or release) the VF; the daemon rolled back. */
  ATTACH_FAILED: 105,
  /** CHECK: the VF or the container interface is not what the allocation says. */
  DRIFT: 106,
  /** The daemon failed in a way it did not classify (HTTP 5xx). */
  DAEMON_ERROR: 107,
} as const;

export class CniError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly details?: string,
  ) {
    super(message);
    this.name = 'CniError';
  }
}

/** What the plugin prints on stdout when it fails. */
interface CniErrorResult {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

const API_CODES: Record<string, number> = {
  NO_CAPACITY: CniCode.NO_CAPACITY,
  CONFLICT: CniCode.CONFLICT,
  NOT_FOUND: CniCode.NOT_FOUND,
  FORBIDDEN: CniCode.DENIED,
  UNAUTHENTICATED: CniCode.DENIED,
  INVALID_ARGUMENT: CniCode.REJECTED,
  OUT_OF_RANGE: CniCode.REJECTED,
  UNSUPPORTED: CniCode.REJECTED,
  NOT_SRIOV_PF: CniCode.REJECTED,
  // Transient on the daemon's side: the runtime may retry the same call.
  BUSY: CniCode.TRY_AGAIN_LATER,
  TIMEOUT: CniCode.TRY_AGAIN_LATER,
};

/** An API error body (`{ error: { code, message } }`) as a CNI error. */
export function fromApiError(status: number, body: unknown, what: string): CniError {
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  const apiCode = typeof error?.code === 'string' ? error.code : `HTTP ${status}`;
  const message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`;
  return new CniError(API_CODES[apiCode] ?? CniCode.DAEMON_ERROR, `${what}: ${message}`, `sriovd answered ${status} ${apiCode}`);
}

/**
 * Anything thrown, as the JSON the spec wants. Errors we did not classify
 * (the host layer's, the OS's) count as I/O failures; their code (`EACCES`,
 * `HOST_ERROR`) goes in `details`, since a minified stack would tell nobody anything.
 */
export function toErrorResult(err: unknown, cniVersion: string): CniErrorResult {
  if (err instanceof CniError) {
    return { cniVersion, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) };
  }
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown } | null)?.code;
  return { cniVersion, code: CniCode.IO_FAILURE, msg: message, ...(typeof code === 'string' ? { details: code } : {}) };
}

/** Runs a project validator (which throws SriovError) and reports its refusal as `code`. */
export function validated<T>(code: number, parse: () => T): T {
  try {
    return parse();
  } catch (e) {
    throw new CniError(code, e instanceof Error ? e.message : String(e));
  }
}
