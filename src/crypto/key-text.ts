// How keys look to people and in config: a public key is "ed25519:" and the
// base64url of its 32 raw bytes; a private key file is PKCS#8 PEM (openssl
// reads it too). --trust takes a key string or a file holding either.

import { createPrivateKey } from 'node:crypto'
import { CanopyError } from '../errors'
import { PUBLIC_KEY_BYTES, fromPrivateKey, type KeyPair } from './ed25519'

const PREFIX = 'ed25519:'

export function formatPublicKey (raw: Uint8Array): string {
  return PREFIX + Buffer.from(raw).toString('base64url')
}

/** The raw key, or null when text is not a public key string. */
export function parsePublicKey (text: string): Buffer | null {
  const t = text.trim()
  if (!t.startsWith(PREFIX)) return null
  const body = t.slice(PREFIX.length)
  if (!/^[A-Za-z0-9_-]{43}$/.test(body)) return null
  const raw = Buffer.from(body, 'base64url')
  return raw.length === PUBLIC_KEY_BYTES ? raw : null
}

export function privateKeyToPem (pair: KeyPair): string {
  return pair.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString()
}

export function privateKeyFromPem (pem: string, source: string): KeyPair {
  try {
    return fromPrivateKey(createPrivateKey({ key: pem, format: 'pem' }))
  } catch (err) {
    throw CanopyError.from(err, 'KEY_INVALID', `${source}: no ed25519 private key`)
  }
}

/**
 * A trusted key from a key string or from the text of a file: a public key
 * string, or a PEM private key (its public half is trusted).
 */
export function publicKeyFromText (text: string, source: string): Buffer {
  const direct = parsePublicKey(text)
  if (direct !== null) return direct
  if (text.includes('-----BEGIN')) return privateKeyFromPem(text, source).publicRaw
  throw new CanopyError('KEY_INVALID', `${source}: not a key (${PREFIX}<base64url> or PEM)`)
}
