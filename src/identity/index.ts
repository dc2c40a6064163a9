// The node's identity: an ed25519 keypair created on first start (mode 0600,
// written atomically) and loaded afterwards. The node id is derived from the
// public key, so whoever claims an id must hold the matching private key.

import { createHash, type KeyObject } from 'node:crypto'
import { join } from 'node:path'
import { CanopyError } from '../errors'
import type { Files, Random } from '../hal'
import { IDENTITY_FILE_BYTES_MAX } from '../limits'
import { keyPairFromSeed, privateKeyFromPem, privateKeyToPem, sign, SEED_BYTES, formatPublicKey, type KeyPair } from '../crypto'

export const IDENTITY_FILE = 'identity.pem'
const NODE_ID_DOMAIN = 'canopy node id v1\0'

export interface Identity {
  /** 32 lowercase hex characters. */
  readonly nodeId: string
  readonly publicKey: Buffer
  readonly publicKeyText: string
  readonly privateKey: KeyObject
  sign (message: Uint8Array): Buffer
}

/** First 16 bytes of SHA-256("canopy node id v1\0" || public key), as hex. */
export function nodeIdOf (publicKey: Uint8Array): string {
  return createHash('sha256').update(NODE_ID_DOMAIN).update(publicKey).digest().subarray(0, 16).toString('hex')
}

export const NODE_ID_PATTERN = /^[0-9a-f]{32}$/

export function identityFromKeyPair (pair: KeyPair): Identity {
  return {
    nodeId: nodeIdOf(pair.publicRaw),
    publicKey: pair.publicRaw,
    publicKeyText: formatPublicKey(pair.publicRaw),
    privateKey: pair.privateKey,
    sign: (message) => sign(pair.privateKey, message)
  }
}

export function createKeyPair (random: Random): KeyPair {
  return keyPairFromSeed(random.bytes(SEED_BYTES))
}

/** Load the identity from dataDir, creating it on first start. */
export async function loadOrCreateIdentity (files: Files, random: Random, dataDir: string): Promise<{ identity: Identity, created: boolean }> {
  const path = join(dataDir, IDENTITY_FILE)
  const existing = await files.read(path, IDENTITY_FILE_BYTES_MAX)
  if (existing !== null) {
    try {
      return { identity: identityFromKeyPair(privateKeyFromPem(existing.toString('utf8'), path)), created: false }
    } catch (err) {
      throw new CanopyError('IDENTITY_INVALID', `${path} is not an identity (${(err as Error).message}); move it away to make a new one`, { cause: err })
    }
  }
  const pair = createKeyPair(random)
  await files.writeAtomic(path, Buffer.from(privateKeyToPem(pair)), 0o600)
  return { identity: identityFromKeyPair(pair), created: true }
}
