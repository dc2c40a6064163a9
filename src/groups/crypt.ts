// Group traffic on the peer link is sealed per link: each side's hello
// carries a fresh X25519 public key (the link's signed handshake binds it to
// the node identity), HKDF-SHA256 turns the shared secret into one
// ChaCha20-Poly1305 key per direction, and the nonce counts frames. A
// frame that fails to open closes the link. RFC 7748 (X25519), RFC 8439 (ChaCha20-Poly1305), RFC 5869 (HKDF).

import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto'
import { GROUP_LINK_FRAMES_MAX, GROUP_SHARES_PENDING_MAX } from '../limits'
import { hex } from './cert'

const ALG = 'chacha20-poly1305'

export class KeyShares {
  readonly #s = new Map<string, KeyObject>()

  /** A new share for a link's hello; its secret waits (bounded) for the link to open. */
  next (): Buffer {
    const { publicKey, privateKey } = generateKeyPairSync('x25519')
    const pub = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32)
    const s = this.#s
    if (s.size >= GROUP_SHARES_PENDING_MAX) s.delete(s.keys().next().value!)
    s.set(hex(pub), privateKey)
    return pub
  }

  /** The sealing keys of a link from both shares (mine is then forgotten); null without a share. */
  session (mine: Buffer, theirs: Buffer, initiator: boolean): Session | null {
    const h = hex(mine)
    const k = this.#s.get(h)
    this.#s.delete(h)
    if (k === undefined || theirs.length !== 32) return null
    let shared: Buffer
    try {
      shared = diffieHellman({ privateKey: k, publicKey: createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: theirs.toString('base64url') }, format: 'jwk' }) })
    } catch {
      return null // a low-order point: no shared secret
    }
    const keys = Buffer.from(hkdfSync('sha256', shared, Buffer.concat(initiator ? [mine, theirs] : [theirs, mine]), 'canopy group link v1', 64))
    const d = [keys.subarray(0, 32), keys.subarray(32)] as const // initiator to responder, and back
    return initiator ? session(...d) : session(d[1], d[0])
  }
}

export type Session = ReturnType<typeof session>

const nonce = (n: number): Buffer => { const b = Buffer.alloc(12); b.writeUInt32BE(n, 8); return b }

/** Frames carry their 32-bit count (the nonce's last bytes): a frame the link dropped does not desynchronise the ends; a replayed or older one fails. */
function session (tx: Buffer, rx: Buffer) {
  let out = 0
  let next = 0
  return {
    /** Seal the next frame; null once this direction has used its nonces (the link must be dialled again). */
    seal (p: Buffer): Buffer | null {
      if (out >= GROUP_LINK_FRAMES_MAX - 1) return null
      const n = nonce(out++)
      const c = createCipheriv(ALG, tx, n) // a 16-byte tag, the default
      return Buffer.concat([n.subarray(8), c.update(p), c.final(), c.getAuthTag()])
    },
    /** Open a frame; null when it is not authentic or not newer than the last one opened. */
    open (s: Buffer): Buffer | null {
      if (s.length < 20) return null
      const n = s.readUInt32BE(0)
      if (n < next) return null
      try {
        const d = createDecipheriv(ALG, rx, nonce(n))
        d.setAuthTag(s.subarray(-16))
        const p = Buffer.concat([d.update(s.subarray(4, -16)), d.final()])
        next = n + 1
        return p
      } catch {
        return null
      }
    }
  }
}
