// One error type for the whole agent. Trouble caused by a peer, a file on
// flash, a config file or a user's input surfaces as a CanopyError with a
// stable string code, never as a bare TypeError/RangeError.

/** Every code, with what it means. Add here; never rename a code (logs, metrics and tests key on them). */
export const ERROR_CODES = {
  // usage and configuration
  USAGE: 'bad command-line usage',
  CONFIG_INVALID: 'a config field is missing or invalid',
  CONFIG_UNREADABLE: 'the config file cannot be read or is not JSON',
  INPUT_INVALID: 'a request or document failed validation',
  // identity and keys
  IDENTITY_INVALID: 'the identity key file is damaged or of the wrong kind',
  KEY_INVALID: 'a key is malformed',
  // files and flash
  FILE_TOO_LARGE: 'a file is larger than its bound',
  FILE_IO: 'a file operation failed',
  FLASH_BAD_ADDRESS: 'a flash operation is outside the geometry or misaligned',
  FLASH_GEOMETRY_MISMATCH: 'the flash on disk has another geometry',
  FLASH_IO: 'the flash device reported an I/O error',
  FLASH_NO_SPACE: 'the flash device is out of space',
  FLASH_POWER_CUT: 'the simulated flash has lost power',
  FLASH_NOT_ERASED: 'a program targeted bytes that were not erased',
  FLASH_CLOSED: 'the flash device is closed',
  // network and HTTP
  HTTP_BAD_REQUEST: 'the HTTP request is malformed',
  HTTP_NOT_FOUND: 'no such resource',
  HTTP_METHOD_NOT_ALLOWED: 'method not allowed on this resource',
  HTTP_FORBIDDEN: 'the source may not use this resource',
  HTTP_BODY_TOO_LARGE: 'the request body exceeds its bound',
  HTTP_UNAVAILABLE: 'the service is busy or shutting down',
  AGENT_UNREACHABLE: 'the local agent cannot be reached',
  ADDRESS_IN_USE: 'the listening address is taken',
  NET_REFUSED: 'the peer refused the connection',
  NET_UNREACHABLE: 'the peer or network cannot be reached',
  NET_CLOSED: 'the connection was closed',
  // discovery (SSDP, signed self-description)
  SSDP_MALFORMED: 'an SSDP datagram is malformed or over one of its bounds',
  DESCRIBE_INVALID: "a peer's self-description is malformed, badly signed or does not match what announced it",
  DESCRIBE_FETCH_FAILED: "a peer's self-description could not be fetched (HTTP status, framing or size)",
  // LAN wire protocol
  DECODE_INVALID: 'untrusted bytes failed to decode or validate',
  // flash cache
  CACHE_HASH_MISMATCH: 'the bytes offered to the cache do not match their hash',
  CACHE_PIECE_TOO_LARGE: 'a piece is larger than the cache can store',
  CACHE_FULL: 'the cache cannot make room (everything left is pinned, or the flash is worn out)',
  CACHE_CORRUPT: 'a stored piece failed verification while it was being read',
  CACHE_NOT_FOUND: 'the piece is not (or no longer) in the cache',
  // content distribution (manifests, transfers, proxy)
  MANIFEST_INVALID: 'a manifest is malformed, over a bound, or its signature does not verify',
  PUBLISHER_UNTRUSTED: 'the manifest is signed by a key this node does not trust',
  PIECE_INVALID: 'a piece does not match its manifest (size or SHA-256)',
  UPSTREAM_FAILED: 'an origin, peer or provider answered with an error or broke the HTTP framing',
  CONTENT_UNAVAILABLE: 'no source could provide the content',
  CONTENT_VETOED: 'the content scanner vetoed the file',
  UNAUTHORIZED: 'credentials are missing or wrong',
  // peer link (src/protocol/link)
  LINK_FRAME_INVALID: 'a link frame is malformed or exceeds its bound',
  LINK_HANDSHAKE_FAILED: 'the peer failed the link handshake (bad hello, bad proof, wrong node id)',
  LINK_QUEUE_FULL: 'the link send queue is full',
  // live streams (src/stream)
  STREAM_MALFORMED: 'a stream message or TS input is malformed',
  STREAM_NOT_FOUND: 'no such stream could be found',
  STREAM_BUSY: 'a stream of that name is already being pushed here',
  STREAM_BAD_SIGNATURE: 'a stream chunk or signature batch failed verification',
  // groups and records (src/groups)
  GROUP_NOT_FOUND: 'no such group here',
  GROUP_INVITATION_INVALID: 'a malformed or tampered invitation or certificate',
  GROUP_INVITATION_EXPIRED: 'an expired invitation',
  GROUP_INVITATION_FOREIGN: 'an invitation for another group or node',
  GROUP_REVOKED: 'a revoked member',
  GROUP_FORBIDDEN: 'not allowed by the roles',
  GROUP_STORE_FULL: 'the record store is full',
  RECORD_NOT_FOUND: 'no such record',
  RECORD_INVALID: 'a bad record',
  // generic
  LIMIT_REACHED: 'a bound was reached',
  TIMEOUT: 'an operation ran past its deadline',
  CLOSED: 'the object is closed',
  ASSERTION: 'an internal invariant was violated',
} as const

export type ErrorCode = keyof typeof ERROR_CODES

export class CanopyError extends Error {
  readonly code: ErrorCode
  readonly detail: Readonly<Record<string, unknown>> | undefined

  constructor (code: ErrorCode, message: string, options: { cause?: unknown, detail?: Record<string, unknown> } = {}) {
    super(message, options) // Error takes `cause` from options when the key is there
    this.name = 'CanopyError'
    this.code = code
    this.detail = options.detail
  }

  static is (err: unknown, code?: ErrorCode): err is CanopyError {
    return err instanceof CanopyError && (code === undefined || err.code === code)
  }

  /** Wrap anything thrown into a CanopyError, keeping the original as the cause. */
  static from (err: unknown, code: ErrorCode, message?: string): CanopyError {
    if (err instanceof CanopyError) return err
    const text = err instanceof Error ? err.message : String(err)
    return new CanopyError(code, message === undefined ? text : `${message}: ${text}`, { cause: err })
  }
}

/** Invariant check: a violation means our own state would be corrupted, so stop loudly. */
export function assert (condition: unknown, message: string): asserts condition {
  if (!condition) throw new CanopyError('ASSERTION', `assertion failed: ${message}`)
}
