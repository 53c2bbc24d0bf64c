/**
 * SriovError → gRPC status. The kubelet puts the status message in the pod's
 * events ("Allocate failed due to rpc error: code = ... desc = ..."), so the
 * message is the error's one readable line, never a stack.
 */
import * as grpc from '@grpc/grpc-js';
import { SriovError } from '../../host/errors.js';

const BY_CODE: Partial<Record<string, grpc.status>> = {
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  INVALID: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  NO_CAPACITY: grpc.status.RESOURCE_EXHAUSTED,
  BUSY: grpc.status.FAILED_PRECONDITION,
  VF_BUSY: grpc.status.FAILED_PRECONDITION,
  CONFLICT: grpc.status.FAILED_PRECONDITION,
  OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  FORBIDDEN: grpc.status.PERMISSION_DENIED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  // The controller did not answer (in time): the kubelet may try again later.
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  TRY_AGAIN: grpc.status.UNAVAILABLE,
  TIMEOUT: grpc.status.UNAVAILABLE,
};

/** Errors fetch() reports (as its cause) when the controller cannot be reached at all. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'ETIMEDOUT', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET']);

/**
 * The longest status message sent. gRPC carries it in a trailer: one over
 * the peer's header limit is not delivered at all (the kubelet's call hangs
 * to its deadline, and the connection with it), so a long one is cut.
 */
export const MAX_STATUS_DETAILS = 1000;

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

function capped(text: string): string {
  return text.length <= MAX_STATUS_DETAILS ? text : `${text.slice(0, MAX_STATUS_DETAILS - 1)}…`;
}

function unreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError') return true;
  const cause = (err as { cause?: { code?: unknown } }).cause;
  return typeof cause?.code === 'string' && UNREACHABLE.has(cause.code);
}

/** The status a handler answers with when `err` was thrown; `context` (the resource) prefixes the message. */
export function toStatus(err: unknown, context: string): Partial<grpc.ServiceError> {
  if (err instanceof SriovError) {
    return { code: BY_CODE[err.code] ?? grpc.status.INTERNAL, details: capped(`${context}: ${oneLine(err.message)}`) };
  }
  const message = err instanceof Error ? err.message : String(err);
  if (unreachable(err)) return { code: grpc.status.UNAVAILABLE, details: capped(`${context}: controller unreachable: ${oneLine(message)}`) };
  return { code: grpc.status.INTERNAL, details: capped(`${context}: internal error: ${oneLine(message)}`) };
}
