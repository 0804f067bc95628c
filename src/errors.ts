// Errors a user can act on: every failure Naplus reports is a NaplusError with a
// stable `code` (errno-style where one fits) and a sentence that says what to do.

/**
 * The codes the README documents. Errno names from the system (EMFILE, say) pass through
 * as they are, so the type stays open: `(string & {})` keeps editors completing the
 * documented ones without closing the set.
 */
export type NaplusErrorCode =
  // arguments, names and ranges
  | 'EINVAL' | 'ERANGE' | 'ENOENT' | 'EEXIST'
  // the cluster file, a segment, the package's native helper
  | 'ECONFIG' | 'ENOBUILD'
  // reaching a node, and the node going away
  | 'ENOTCONN' | 'ESHUTDOWN' | 'EPEERLOST' | 'ECONNRESET' | 'ETIMEDOUT' | 'EBADF'
  // the heap
  | 'ENOMEM' | 'EDOUBLEFREE'
  // locks and barriers
  | 'EDEADLK' | 'EPERM' | 'EOWNERDEAD'
  // the kernel: userfaultfd permission and features, files
  | 'EACCES' | 'ENOTSUP' | 'ENOSPC' | 'EIO'
  // a peer or a file that does not speak the protocol or format
  | 'EPROTO' | 'ENODATA'
  | (string & {});

export class NaplusError extends Error {
  readonly code: NaplusErrorCode;

  constructor(code: NaplusErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NaplusError';
    this.code = code;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) >= 4096) {
    return `${value} (0x${value.toString(16)}) of type number`;
  }
  if (typeof value === 'string') return `'${value}' of type string`;
  return `${String(value)} of type ${value === null ? 'null' : typeof value}`;
}

/** `Expected <what> for <name> but received <value> of type <type>` (code EINVAL). */
export function invalidArgument(name: string, expected: string, value: unknown): NaplusError {
  return new NaplusError('EINVAL', `Expected ${expected} for ${name} but received ${describe(value)}`);
}

/** Checks a non-negative safe integer; returns it typed. */
export function checkUint(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(name, 'a non-negative integer', value);
  }
  return value;
}

/** Checks a name: a non-empty string of at most `maxBytes` UTF-8 bytes. */
export function checkName(what: string, value: unknown, maxBytes = 200): string {
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > maxBytes) {
    throw invalidArgument(what, `a non-empty string of at most ${maxBytes} UTF-8 bytes`, value);
  }
  return value;
}

/** Checks a non-negative integer that is a multiple of `align`. */
export function checkAligned(name: string, value: unknown, align: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value % align !== 0) {
    throw invalidArgument(name, `a non-negative multiple of ${align}`, value);
  }
  return value;
}

/** Errors thrown by the native helper carry an errno name in `code`. */
export function errnoOf(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}
