// ed25519 on Node's crypto (design.md: ~330x tweetnacl's verify rate). Keys
// travel as raw 32-byte values; Node wants DER, so we wrap them with the fixed
// RFC 8410 prefixes.

import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, type KeyObject } from 'node:crypto'
import { CanopyError } from '../errors'

const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex') // RFC 8410 §7, then the 32-byte seed
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex') // then the 32-byte public key

export const PUBLIC_KEY_BYTES = 32
export const SEED_BYTES = 32
export const SIGNATURE_BYTES = 64

export interface KeyPair {
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** Raw 32-byte public key. */
  readonly publicRaw: Buffer
}

export function keyPairFromSeed (seed: Uint8Array): KeyPair {
  if (seed.length !== SEED_BYTES) throw new CanopyError('KEY_INVALID', `ed25519 seed of ${seed.length} bytes`)
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
  return fromPrivateKey(privateKey)
}

export function fromPrivateKey (privateKey: KeyObject): KeyPair {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new CanopyError('KEY_INVALID', `not an ed25519 key: ${privateKey.asymmetricKeyType}`)
  const publicKey = createPublicKey(privateKey)
  return { privateKey, publicKey, publicRaw: rawPublicKey(publicKey) }
}

export function rawPublicKey (key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' })
  return Buffer.from(der.subarray(der.length - PUBLIC_KEY_BYTES))
}

export function rawSeed (key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' })
  return Buffer.from(der.subarray(der.length - SEED_BYTES))
}

/** A KeyObject for a raw public key; cache it where verifies are frequent. */
export function publicKeyFromRaw (raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_BYTES) throw new CanopyError('KEY_INVALID', `ed25519 public key of ${raw.length} bytes`)
  try {
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
  } catch (err) {
    throw CanopyError.from(err, 'KEY_INVALID', 'invalid ed25519 public key')
  }
}

export function sign (privateKey: KeyObject, message: Uint8Array): Buffer {
  return nodeSign(null, message, privateKey)
}

/** False for any malformed key or signature; never throws on peer input. */
export function verify (publicKey: KeyObject | Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES) return false
  try {
    const key = publicKey instanceof Uint8Array ? publicKeyFromRaw(publicKey) : publicKey
    return nodeVerify(null, message, key, signature)
  } catch {
    return false
  }
}

/**
 * Domain-separated signatures: the signed bytes are the domain string, a zero
 * byte, then the message, so a signature made for one kind of message can
 * never be replayed as another. Verify the exact bytes received.
 */
export function domainBytes (domain: string, message: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(domain, 'utf8'), Buffer.from([0]), message])
}

export function signDomain (privateKey: KeyObject, domain: string, message: Uint8Array): Buffer {
  return sign(privateKey, domainBytes(domain, message))
}

export function verifyDomain (publicKey: KeyObject | Uint8Array, domain: string, message: Uint8Array, signature: Uint8Array): boolean {
  return verify(publicKey, domainBytes(domain, message), signature)
}
