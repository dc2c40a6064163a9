// The link's own messages (channel 0): HELLO and PROOF for the handshake,
// PING/PONG for liveness and round-trip time, CLOSE with a reason. Byte
// layouts are in FORMAT.md; each decoder rejects short, long and unknown
// input with LINK_FRAME_INVALID.

import { createHash } from 'node:crypto'
import { SIGNATURE_BYTES, PUBLIC_KEY_BYTES } from '../../crypto'
import { LINK_CHANNELS_MAX, LINK_HELLO_EXTENSION_BYTES_MAX } from '../../limits'
import { ByteReader, ByteWriter } from './bytes'
import { FRAME_HEADER_BYTES, allocFrame } from './frame'
import { LINK_CHANNELS } from './channels'

export const LINK_VERSION = 1
export const NONCE_BYTES = 32
/** Domain of the handshake signature (crypto.signDomain). */
export const PROOF_DOMAIN = 'canopy link proof v1'

export const CONTROL = { hello: 1, proof: 2, ping: 3, pong: 4, close: 5 } as const

/** Why a link was closed, as sent in CLOSE and kept in counters. */
export const CLOSE_REASONS = {
  normal: 0,
  protocol: 1,
  handshake: 2,
  duplicate: 3,
  dead: 4,
  idle: 5,
  full: 6,
  shutdown: 7
} as const
export type CloseReason = keyof typeof CLOSE_REASONS

export interface Hello {
  version: number
  nonce: Buffer
  publicKey: Buffer
  /** Where this side accepts links (0: it does not). */
  listenPort: number
  channels: number[]
  /** Opaque to v1; covered by the proof. Issue 6 carries its key agreement here. */
  extension: Buffer
}

export type ControlMessage =
  | { type: 'hello', hello: Hello }
  | { type: 'proof', signature: Buffer }
  | { type: 'ping', id: number }
  | { type: 'pong', id: number }
  | { type: 'close', reason: number }

const LINK = LINK_CHANNELS.link

export function encodeHello (h: Hello): Buffer {
  const size = 1 + 1 + NONCE_BYTES + PUBLIC_KEY_BYTES + 2 + 1 + h.channels.length + 2 + h.extension.length
  const frame = allocFrame(LINK, size)
  const w = new ByteWriter(frame, FRAME_HEADER_BYTES)
    .u8(CONTROL.hello).u8(h.version).bytes(h.nonce).bytes(h.publicKey).u16(h.listenPort).u8(h.channels.length)
  for (const c of h.channels) w.u8(c)
  return w.u16(h.extension.length).bytes(h.extension).done()
}

export function encodeProof (signature: Buffer): Buffer {
  return new ByteWriter(allocFrame(LINK, 1 + SIGNATURE_BYTES), FRAME_HEADER_BYTES).u8(CONTROL.proof).bytes(signature).done()
}

export function encodePing (type: 'ping' | 'pong', id: number): Buffer {
  return new ByteWriter(allocFrame(LINK, 5), FRAME_HEADER_BYTES).u8(CONTROL[type]).u32(id).done()
}

export function encodeClose (reason: CloseReason): Buffer {
  return new ByteWriter(allocFrame(LINK, 2), FRAME_HEADER_BYTES).u8(CONTROL.close).u8(CLOSE_REASONS[reason]).done()
}

/** Decode one channel-0 payload (the frame without its 5-byte header). */
export function decodeControl (payload: Uint8Array): ControlMessage {
  const r = new ByteReader(payload, 'LINK_FRAME_INVALID')
  const type = r.u8('control type')
  switch (type) {
    case CONTROL.hello: {
      const version = r.u8('hello version')
      const nonce = Buffer.from(r.bytes(NONCE_BYTES, 'hello nonce'))
      const publicKey = Buffer.from(r.bytes(PUBLIC_KEY_BYTES, 'hello public key'))
      const listenPort = r.u16('hello listen port')
      const count = r.u8('hello channel count')
      if (count > LINK_CHANNELS_MAX) r.fail(`hello lists ${count} channels, more than ${LINK_CHANNELS_MAX}`)
      const channels = [...r.bytes(count, 'hello channels')]
      const extLength = r.u16('hello extension length')
      if (extLength > LINK_HELLO_EXTENSION_BYTES_MAX) r.fail(`hello extension of ${extLength} bytes exceeds ${LINK_HELLO_EXTENSION_BYTES_MAX}`)
      const extension = Buffer.from(r.bytes(extLength, 'hello extension'))
      r.done('hello')
      return { type: 'hello', hello: { version, nonce, publicKey, listenPort, channels, extension } }
    }
    case CONTROL.proof: {
      const signature = Buffer.from(r.bytes(SIGNATURE_BYTES, 'proof signature'))
      r.done('proof')
      return { type: 'proof', signature }
    }
    case CONTROL.ping:
    case CONTROL.pong: {
      const id = r.u32('ping id')
      r.done('ping')
      return { type: type === CONTROL.ping ? 'ping' : 'pong', id }
    }
    case CONTROL.close: {
      const reason = r.u8('close reason')
      r.done('close')
      return { type: 'close', reason }
    }
    default:
      return r.fail(`unknown link control type ${type}`)
  }
}

/**
 * What each side signs: SHA-256 over the initiator's and the responder's
 * HELLO frames exactly as sent, then the signer's role (0 initiator, 1
 * responder), so a proof can neither be replayed on another connection (fresh
 * nonces) nor reflected back at its maker (the role byte).
 */
export function proofTranscript (initiatorHello: Buffer, responderHello: Buffer, signerIsInitiator: boolean): Buffer {
  const digest = createHash('sha256').update(initiatorHello).update(responderHello).digest()
  return Buffer.concat([digest, Buffer.from([signerIsInitiator ? 0 : 1])])
}
