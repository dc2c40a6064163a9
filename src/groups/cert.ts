// Groups are named by their root key (ed25519): the group id is derived from
// it, so a certificate chain that starts at that key proves membership with
// no server to ask. A certificate is CBOR plus a signature over its exact
// bytes; the first of a chain is signed by the root key, each next one by the
// node key of the previous one's subject, who must be an admin. An invitation
// is such a chain whose leaf expires and names the inviter's contact; the
// membership the inviter signs at join time is the same leaf without expiry.
// Byte layouts: FORMAT.md.

import { createHash, type KeyObject } from 'node:crypto'
import { keyPairFromSeed, signDomain, verifyDomain } from '../crypto'
import { CanopyError, type ErrorCode } from '../errors'
import { nodeIdOf, type Identity } from '../identity'
import { GROUP_CHAIN_COUNT_MAX, GROUP_INVITATION_CHARS_MAX, GROUP_NAME_BYTES_MAX } from '../limits'
import { decodeCborAs, encodeCbor, type DecodeLimits } from '../protocol/wire/cbor'
import { blob, body, bytes, optionalField, text, uint } from '../protocol/wire/schema'
import { arrayOf, type Spec } from '../validate'

export const ROLES = { reader: 1, member: 2, admin: 4 } as const
export type Role = keyof typeof ROLES
export const WRITER = ROLES.member | ROLES.admin
/** The LAN's default group: every agent of the LAN is a member, no certificates. */
export const LAN_GROUP = 'lan'
const DOMAIN = 'canopy group cert v1'
const LIMITS = { bytesMax: 1024, depthMax: 2, itemsMax: 32, containerCountMax: 16 }

export const hex = (b: Buffer): string => b.toString('hex')
/** Group ids travel as 16 bytes; the LAN group's are zeros. */
export const gidBytes = (g: string): Buffer => (g === LAN_GROUP ? Buffer.alloc(16) : Buffer.from(g, 'hex'))
export const gidText = (b: Buffer): string => (b.some((x) => x) ? hex(b) : LAN_GROUP)
export const sha256 = (...parts: Uint8Array[]): Buffer => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest() }
export const groupIdOf = (root: Uint8Array): string => sha256(Buffer.from('canopy group id v1\0'), root).toString('hex', 0, 16)
export const rolesOf = (names: readonly string[]): number => names.reduce((m, n) => m | (ROLES[n as Role] ?? 0), 0)
export const roleNames = (mask: number): Role[] => (Object.keys(ROLES) as Role[]).filter((r) => (mask & ROLES[r]) !== 0)

export interface Cert {
  /** Group id (hex). */
  g: string
  /** Subject node id. */
  s: string
  /** Roles, a mask of ROLES. */
  r: number
  /** Expiry in wall seconds; 0: none. */
  x: number
  /** Issuer's public key. */
  k: Buffer
  /** Group name. */
  n?: string
  /** Inviter's contact "nodeid@host:port" (invitations). */
  a?: string
}

const certSpec = body({ g: bytes(16), s: bytes(16), r: uint(1, 7), x: uint(0), k: bytes(32), n: optionalField(text(GROUP_NAME_BYTES_MAX)), a: optionalField(text(128)) })
const chainSpec = arrayOf(blob(LIMITS.bytesMax), { max: GROUP_CHAIN_COUNT_MAX })
/** GROUP_INVITATION_INVALID, _FOREIGN or _EXPIRED. */
export const coded = (code: ErrorCode, m: string): CanopyError => new CanopyError(code, m)
export const invitationError = (code: 'INVALID' | 'FOREIGN' | 'EXPIRED', m: string): CanopyError => coded(`GROUP_INVITATION_${code}`, m)
const err = invitationError
const notInvitation = (): never => { throw err('INVALID', 'not an invitation') }
function decode<T> (b: Buffer, spec: Spec<T>, limits: DecodeLimits, what: string): T {
  try {
    return decodeCborAs(b, spec, limits, what)
  } catch {
    throw err('INVALID', `bad ${what}`)
  }
}

export function signCert (c: Cert, key: KeyObject): Buffer {
  const b = encodeCbor({ ...c, g: gidBytes(c.g), s: Buffer.from(c.s, 'hex') })
  return Buffer.concat([b, signDomain(key, DOMAIN, b)])
}

export function openCert (bytes: Buffer): Cert {
  const b = bytes.subarray(0, -64)
  const d = decode(b, certSpec, LIMITS, 'certificate')
  const c = { ...d, g: hex(d.g), s: hex(d.s) }
  if (!verifyDomain(c.k, DOMAIN, b, bytes.subarray(-64))) throw err('INVALID', 'bad signature')
  return c
}

/** What a verified chain says: its leaf (g the group, s the node, r its roles, x, k the issuer's key, a the contact), n the group's name, and the chain. */
export type Membership = Cert & { n: string, chain: Buffer[] }

/**
 * Verify a chain from the root key to its leaf: every certificate but the
 * leaf unexpired and making its subject an admin, nobody on it revoked. The
 * leaf's expiry is the caller's business (an invitation expires, a membership not).
 */
export function verifyChain (chain: Buffer[], nowS: number, revoked: (node: string) => boolean = () => false): Membership {
  if (chain.length === 0 || chain.length > GROUP_CHAIN_COUNT_MAX) throw err('INVALID', 'bad chain')
  const certs = chain.map(openCert)
  const group = groupIdOf(certs[0]!.k)
  certs.forEach((c, i) => {
    const up = certs[i - 1]
    if (c.g !== group) throw err('FOREIGN', 'another group')
    if (up !== undefined) {
      if (nodeIdOf(c.k) !== up.s || (up.r & ROLES.admin) === 0) throw err('INVALID', 'issuer not admin')
      if (up.x !== 0 && up.x <= nowS) throw err('EXPIRED', 'issuer expired')
    }
    if (revoked(c.s)) throw coded('GROUP_REVOKED', `${c.s} revoked`)
  })
  const leaf = certs[certs.length - 1]!
  return { ...leaf, n: certs.find((c) => c.n !== undefined)?.n ?? '', chain }
}

export const formatInvitation = (chain: Buffer[]): string => 'canopy-invite:' + encodeCbor(chain).toString('base64url')

/** A chain as CBOR (invitations, member records). */
export const decodeChain = (b: Buffer): Buffer[] => decode(b, chainSpec, { ...LIMITS, bytesMax: 4 * LIMITS.bytesMax }, 'chain')

/** Verify an invitation's chain: an expiry (not passed) and the inviter's contact; by the joiner, and by the inviter with its revocations. */
export function checkInvitation (chain: Buffer[], nowS: number, revoked?: (node: string) => boolean): Membership {
  const m = verifyChain(chain, nowS, revoked)
  if (m.x === 0 || m.a === undefined) notInvitation()
  if (m.x <= nowS) throw err('EXPIRED', 'invitation expired')
  return m
}

/** Parse and verify an invitation's text. */
export function parseInvitation (t: string, nowS: number): Membership {
  const [, b64] = /^canopy-invite:([\w-]+)$/.exec(t.trim()) ?? []
  if (b64 === undefined || t.length > GROUP_INVITATION_CHARS_MAX) notInvitation()
  return checkInvitation(decodeChain(Buffer.from(b64, 'base64url')), nowS)
}

/** A new group: the owner's chain (admin and member) under the root key made from seed. */
export function newGroup (name: string, me: Identity, seed: Buffer): { group: string, chain: Buffer[] } {
  const root = keyPairFromSeed(seed)
  const group = groupIdOf(root.publicRaw)
  return { group, chain: [signCert({ g: group, s: me.nodeId, r: WRITER, x: 0, k: root.publicRaw, n: name }, root.privateKey)] }
}

/** My chain extended by a certificate I (an admin) issue: an invitation (x > 0, a contact) or a membership (x = 0). */
export function issue (chain: Buffer[], me: Identity, c: Omit<Cert, 'k'>): Buffer[] {
  if ((verifyChain(chain, 0).r & ROLES.admin) === 0) throw coded('GROUP_FORBIDDEN', 'only admins invite')
  if (chain.length >= GROUP_CHAIN_COUNT_MAX) throw coded('LIMIT_REACHED', 'chain too long')
  return [...chain, signCert({ ...c, k: me.publicKey }, me.privateKey)]
}
