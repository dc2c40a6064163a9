// The message types of the LAN wire protocol and the schema of each body
// (FORMAT.md has them byte by byte). Bodies are CBOR maps with one-letter
// keys; content ids travel as 32 bytes, piece ranges as flat integer lists.

import { CanopyError } from '../../errors'
import { WIRE_BODY_BYTES_MAX, WIRE_CBOR_CONTAINER_COUNT_MAX, WIRE_CBOR_DEPTH_MAX, WIRE_CBOR_ITEMS_COUNT_MAX } from '../../limits'
import type { Infer, Spec } from '../../validate'
import type { PieceRanges } from '../content'
import { decodeCborAs, encodeCbor, type DecodeLimits } from './cbor'
import { body, bytes, content, contentToWire, flag, optionalField, ranges, rangesToWire, text, uint } from './schema'

/** Type byte of each message. Never renumber; add at the end. */
export const MESSAGE_TYPES = {
  NEED: 1,
  HAVE: 2,
  FOUND: 3,
  DOWNLOADING: 4,
  PROVIDER: 5,
  ELECT: 6,
  ELECTED: 7,
  HEARTBEAT: 8
} as const

export type MessageName = keyof typeof MESSAGE_TYPES
export const MESSAGE_NAMES = Object.keys(MESSAGE_TYPES) as MessageName[]
const NAME_OF = new Map<number, MessageName>(MESSAGE_NAMES.map((n) => [MESSAGE_TYPES[n], n]))
export const messageName = (type: number): MessageName | undefined => NAME_OF.get(type)

const requestId = uint(1)
const port = uint(1, 65535)
const load = uint(0, 100)

const criteria = {
  /** Has WAN access of its own (a WAN-role interface is up). */
  w: flag,
  /** WAN bandwidth, Mbit/s. */
  b: uint(0),
  /** Free flash for the cache, MiB. */
  f: uint(0),
  /** Uptime, seconds. */
  u: uint(0),
  /** HTTP port (data plane). */
  h: port
}

export const BODY_SPECS = {
  /** I need content c (pieces p, or all); q: tell me the designated provider too. */
  NEED: body({ r: requestId, c: content, p: optionalField(ranges), q: flag }),
  /** I hold pieces p (absent: all) of c; fetch them from my HTTP port h; my load is l %. r = 0: unsolicited (a followed download completed). */
  HAVE: body({ r: uint(0), c: content, p: optionalField(ranges), l: load, h: port }),
  /** Request r is answered: cancel your answer. f: and send me your download progress. */
  FOUND: body({ r: requestId, c: content, f: flag }),
  /** I am fetching c: pieces p are verified and servable, d of t KiB done (t = 0: unknown). r = 0: a progress push to followers. */
  DOWNLOADING: body({ r: uint(0), c: content, p: ranges, d: uint(0), t: uint(0), l: load, h: port }),
  /** The designated provider (node n at address a, HTTP port h, UDP port u) fetches c from the internet for the LAN; sent by it or by a third party. */
  PROVIDER: body({ r: requestId, c: content, n: bytes(16), a: text(64, /^[0-9A-Fa-f.:]+$/), h: port, u: port }),
  /** My claim to be the designated provider. */
  ELECT: body(criteria),
  /** I am the designated provider (term t). */
  ELECTED: body({ ...criteria, t: uint(0) }),
  /** Still the designated provider (term t). */
  HEARTBEAT: body({ ...criteria, t: uint(0) })
} as const

export type Body<N extends MessageName> = Infer<(typeof BODY_SPECS)[N]>
export type Criteria = Body<'ELECT'>

export const WIRE_BODY_LIMITS: DecodeLimits = {
  bytesMax: WIRE_BODY_BYTES_MAX,
  depthMax: WIRE_CBOR_DEPTH_MAX,
  itemsMax: WIRE_CBOR_ITEMS_COUNT_MAX,
  containerCountMax: WIRE_CBOR_CONTAINER_COUNT_MAX
}

/** Decode a body of the given type. Throws only DECODE_INVALID. */
export function decodeBody<N extends MessageName> (name: N, data: Uint8Array): Body<N> {
  const spec = BODY_SPECS[name] as unknown as Spec<Body<N>>
  return decodeCborAs(data, spec, WIRE_BODY_LIMITS, `${name} body`)
}

const isRanges = (v: unknown): v is PieceRanges => Array.isArray(v) && v.every((x) => Array.isArray(x) && x.length === 2)

/** Our own bodies into wire form: content ids as bytes, ranges flat, flags as 1 or absent. */
export function encodeBody<N extends MessageName> (name: N, value: Body<N>): Buffer {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (v === undefined || v === false) continue
    if (k === 'c') out[k] = contentToWire(v as string)
    else if (k === 'p' && isRanges(v)) out[k] = rangesToWire(v)
    else if (v === true) out[k] = 1
    else if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff) throw new CanopyError('ASSERTION', `${name}.${k}: ${v} is not a uint32`)
      out[k] = v
    } else out[k] = v
  }
  const data = encodeCbor(out)
  if (data.length > WIRE_BODY_BYTES_MAX) throw new CanopyError('LIMIT_REACHED', `${name} body: ${data.length} bytes`)
  return data
}
