// The envelope around every LAN datagram (FORMAT.md):
//
//   0  2  magic "CN"             36  8  counter, big-endian, 1 .. 2^53-1
//   2  1  version (1)            44  .. body: one CBOR item
//   3  1  type                   -64 64 ed25519 signature
//   4 32  sender's public key
//
// The signature covers "canopy wire v1 <TYPE>" || 0x00 || every byte before
// it, exactly as received (never a re-encoding). The fixed header lets a
// receiver drop junk, unknown versions and types, and replays before it pays
// for a signature check or a CBOR decode.

import type { KeyObject } from 'node:crypto'
import { CanopyError, assert } from '../../errors'
import { signDomain, verifyDomain } from '../../crypto'
import { WIRE_BODY_BYTES_MAX, WIRE_COUNTER_MAX, WIRE_DATAGRAM_BYTES_MAX, WIRE_HEADER_BYTES, WIRE_SIGNATURE_BYTES } from '../../limits'
import { invalid } from './cbor-scan'
import { decodeBody, messageName, MESSAGE_TYPES, type Body, type MessageName } from './messages'

export const WIRE_MAGIC_0 = 0x43 // 'C'
export const WIRE_MAGIC_1 = 0x4e // 'N'
export const WIRE_VERSION = 1
const KEY_OFFSET = 4
const COUNTER_OFFSET = 36
const MIN_BYTES = WIRE_HEADER_BYTES + 1 + WIRE_SIGNATURE_BYTES

/** The namespace each type's signatures live in. */
export const signingDomain = (name: MessageName): string => `canopy wire v${WIRE_VERSION} ${name}`

export interface ParsedEnvelope {
  name: MessageName
  /** Views into the datagram: copy what you keep. */
  senderKey: Buffer
  counter: number
  body: Buffer
  signed: Buffer
  signature: Buffer
}

/**
 * The fixed layout only: no signature check, no CBOR. Throws DECODE_INVALID
 * with detail.reason one of size, magic, version, type, counter (the
 * transport counts "version" and "type" as unknown, the rest as malformed).
 */
export function parseEnvelope (data: Uint8Array): ParsedEnvelope {
  if (data.length > WIRE_DATAGRAM_BYTES_MAX || data.length < MIN_BYTES) throw invalid('size', `${data.length} bytes`)
  const b = Buffer.from(data.buffer, data.byteOffset, data.length)
  if (b[0] !== WIRE_MAGIC_0 || b[1] !== WIRE_MAGIC_1) throw invalid('magic')
  const version = b[2]!
  if (version !== WIRE_VERSION) throw invalid('version', String(version))
  const type = b[3]!
  const name = messageName(type)
  if (!name) throw invalid('type', String(type))
  const hi = b.readUInt32BE(COUNTER_OFFSET)
  const lo = b.readUInt32BE(COUNTER_OFFSET + 4)
  const counter = hi * 2 ** 32 + lo
  if (counter === 0 || counter > WIRE_COUNTER_MAX) throw invalid('counter')
  const end = b.length - WIRE_SIGNATURE_BYTES
  return {
    name,
    senderKey: b.subarray(KEY_OFFSET, KEY_OFFSET + 32),
    counter,
    body: b.subarray(WIRE_HEADER_BYTES, end),
    signed: b.subarray(0, end),
    signature: b.subarray(end)
  }
}

/** Does the signature cover these exact bytes under the type's namespace? Never throws. */
export function verifyEnvelope (p: ParsedEnvelope, key: KeyObject | Uint8Array): boolean {
  return verifyDomain(key, signingDomain(p.name), p.signed, p.signature)
}

/** Build and sign a datagram. The body is already-encoded CBOR (messages.encodeBody). */
export function sealEnvelope (name: MessageName, senderKey: Buffer, privateKey: KeyObject, counter: number, body: Uint8Array): Buffer {
  assert(senderKey.length === 32 && Number.isInteger(counter) && counter >= 1 && counter <= WIRE_COUNTER_MAX, 'a 32-byte key and a counter in range')
  if (body.length < 1 || body.length > WIRE_BODY_BYTES_MAX) throw new CanopyError('LIMIT_REACHED', `${name} body: ${body.length} bytes`)
  const out = Buffer.alloc(WIRE_HEADER_BYTES + body.length + WIRE_SIGNATURE_BYTES)
  out[0] = WIRE_MAGIC_0
  out[1] = WIRE_MAGIC_1
  out[2] = WIRE_VERSION
  out[3] = MESSAGE_TYPES[name]
  senderKey.copy(out, KEY_OFFSET)
  out.writeUInt32BE(Math.floor(counter / 2 ** 32), COUNTER_OFFSET)
  out.writeUInt32BE(counter % 2 ** 32, COUNTER_OFFSET + 4)
  out.set(body, WIRE_HEADER_BYTES)
  const end = out.length - WIRE_SIGNATURE_BYTES
  const sig = signDomain(privateKey, signingDomain(name), out.subarray(0, end))
  assert(sig.length === WIRE_SIGNATURE_BYTES, '64-byte signature')
  sig.copy(out, end)
  return out
}

export interface DecodedEnvelope<N extends MessageName = MessageName> {
  name: N
  senderKey: Buffer
  counter: number
  body: Body<N>
}

/**
 * Layout and body, without the signature: what the fuzz test and tools
 * exercise. The transport verifies before it decodes (openEnvelope order).
 * Throws only DECODE_INVALID.
 */
export function decodeEnvelope (data: Uint8Array): DecodedEnvelope {
  return decoded(parseEnvelope(data))
}

/** Layout, signature, body. Throws only DECODE_INVALID (reason "signature" when it does not verify). */
export function openEnvelope (data: Uint8Array): DecodedEnvelope {
  const p = parseEnvelope(data)
  if (!verifyEnvelope(p, p.senderKey)) throw invalid('signature', p.name)
  return decoded(p)
}

const decoded = (p: ParsedEnvelope): DecodedEnvelope =>
  ({ name: p.name, senderKey: Buffer.from(p.senderKey), counter: p.counter, body: decodeBody(p.name, p.body) })
