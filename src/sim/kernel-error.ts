/** The simulated kernel's refusals, worded as the real tools print them. */
import { KernelError } from '../host/ports.js';

export const ERRNO_TEXT: Record<string, string> = {
  EINVAL: 'Invalid argument',
  EOPNOTSUPP: 'Operation not supported',
  EPROTONOSUPPORT: 'Protocol not supported',
  EAGAIN: 'Resource temporarily unavailable',
  ERANGE: 'Numerical result out of range',
  EBUSY: 'Device or resource busy',
  EEXIST: 'File exists',
  ENODEV: 'No such device',
  ENOENT: 'No such file or directory',
};

export function kernelError(errno: string, operation: string, detail?: string): KernelError {
  const text = ERRNO_TEXT[errno] ?? errno;
  return new KernelError(errno, operation, `${operation}: ${text}${detail ? ` (${detail})` : ''}`);
}
