// The link's own messages (channel 0): HELLO and PROOF for the handshake,
// PING/PONG for liveness and round-trip time, CLOSE with a reason. Byte
// layouts are in FORMAT.md (and as tables below); the decoder rejects short,
// long and unknown input with LINK_FRAME_INVALID.

import { SIGNATURE_BYTES, PUBLIC_KEY_BYTES } from '../../crypto'
import { LINK_CHANNELS_MAX, LINK_HELLO_EXTENSION_BYTES_MAX } from '../../limits'
import { U8, U16, U32, blob, decodeTyped, encodeFields, list, raw, record, sha256 } from './bytes'

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
  | ({ type: 'hello' } & Hello)
  | { type: 'proof', signature: Buffer }
  | { type: 'ping', id: number }
  | { type: 'pong', id: number }
  | { type: 'close', reason: number }

const PING = record('id', U32)
const LAYOUTS = {
  [CONTROL.hello]: ['hello', record('version nonce publicKey listenPort channels extension',
    U8, raw(NONCE_BYTES), raw(PUBLIC_KEY_BYTES), U16, list(LINK_CHANNELS_MAX, U8), blob(LINK_HELLO_EXTENSION_BYTES_MAX))],
  [CONTROL.proof]: ['proof', record('signature', raw(SIGNATURE_BYTES))],
  [CONTROL.ping]: ['ping', PING],
  [CONTROL.pong]: ['pong', PING],
  [CONTROL.close]: ['close', record('reason', U8)]
} as const

/** A control frame: the type byte, then the message's fields (an object by name, or an array by position). */
const encode = (type: number, m: unknown): Buffer => encodeFields([U8, LAYOUTS[type as 1][1]], [type, m], 0)

export const encodeHello = (h: Hello): Buffer => encode(CONTROL.hello, h)
export const encodeProof = (signature: Buffer): Buffer => encode(CONTROL.proof, [signature])
export const encodePing = (type: 'ping' | 'pong', id: number): Buffer => encode(CONTROL[type], [id])
export const encodeClose = (reason: CloseReason): Buffer => encode(CONTROL.close, [CLOSE_REASONS[reason]])

/** Decode one channel-0 payload (the frame without its 5-byte header). */
export const decodeControl = (payload: Uint8Array): ControlMessage => decodeTyped(payload, 'LINK_FRAME_INVALID', LAYOUTS) as ControlMessage

/**
 * What each side signs: SHA-256 over the initiator's and the responder's
 * HELLO frames exactly as sent, then the signer's role (0 initiator, 1
 * responder), so a proof can neither be replayed on another connection (fresh
 * nonces) nor reflected back at its maker (the role byte).
 */
export function proofTranscript (initiatorHello: Buffer, responderHello: Buffer, signerIsInitiator: boolean): Buffer {
  return Buffer.concat([sha256(initiatorHello, responderHello), Buffer.from([signerIsInitiator ? 0 : 1])])
}
