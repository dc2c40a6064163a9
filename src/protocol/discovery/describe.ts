// The signed self-description served at GET /api/describe: who a node is
// (id, public key), what it offers (ports, capabilities, version, name) and
// where (its LAN addresses), signed by its node key.
//
// Layout (FORMAT.md in this folder): the body is valid JSON,
//   {"document":<D>,"signature":"<S>"}
// where D is the document's exact bytes (a JSON object, UTF-8) and S is the
// base64url ed25519 signature (86 characters) over
//   "canopy describe v1" || 0x00 || D          (crypto.signDomain)
// The verifier slices D out of the bytes received by this fixed framing and
// checks the signature over those bytes, never over a re-encoding.

import { CanopyError } from '../../errors'
import { formatPublicKey, parsePublicKey, signDomain, verifyDomain, SIGNATURE_BYTES } from '../../crypto'
import { parseIp } from '../../hal'
import { NODE_ID_PATTERN, nodeIdOf, type Identity } from '../../identity'
import { DESCRIBE_ADDRESSES_COUNT_MAX, DESCRIBE_BYTES_MAX, DESCRIBE_CAPABILITIES_COUNT_MAX } from '../../limits'
import { arrayOf, int, map, obj, optional, str, validate, type Infer } from '../../validate'

export const DESCRIBE_DOMAIN = 'canopy describe v1'
export const DESCRIBE_VERSION = 1

const PREFIX = Buffer.from('{"document":')
const SIGNATURE_FIELD = Buffer.from(',"signature":"')
const SUFFIX = Buffer.from('"}')
const SIGNATURE_CHARS = Math.ceil((SIGNATURE_BYTES * 4) / 3) // base64url without padding: 86
const FRAMING_BYTES = PREFIX.length + SIGNATURE_FIELD.length + SIGNATURE_CHARS + SUFFIX.length

/** A nonce a fetcher sends (?nonce=) so the answer is fresh: 16 to 64 base64url characters. */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{16,64}$/
const CAPABILITY = str({ min: 1, max: 32, pattern: /^[a-z0-9][a-z0-9._-]*$/, hint: 'a capability name (a-z 0-9 . _ -)' })
const ADDRESS = map(str({ min: 2, max: 45 }), 'an IP address', (s) => (parseIp(s) ? s : undefined))

// Newer versions may add fields: the ones we know are checked, the rest ignored (open).
const documentSpec = obj({
  v: int(DESCRIBE_VERSION, DESCRIBE_VERSION),
  nodeId: str({ min: 32, max: 32, pattern: NODE_ID_PATTERN, hint: '32 lowercase hex characters' }),
  publicKey: str({ min: 1, max: 64, hint: 'ed25519:<base64url>' }),
  name: str({ max: 64 }),
  version: str({ min: 1, max: 32 }),
  capabilities: arrayOf(CAPABILITY, { max: DESCRIBE_CAPABILITIES_COUNT_MAX }),
  httpPort: int(1, 65535),
  udpPort: int(0, 65535),
  /** The peer link's TCP port (streams, groups); absent in older agents. */
  linkPort: optional(int(1, 65535)),
  addresses: arrayOf(ADDRESS, { max: DESCRIBE_ADDRESSES_COUNT_MAX }),
  nonce: optional(str({ min: 16, max: 64, pattern: NONCE_PATTERN }))
}, true)

export type DescribeDocument = Infer<typeof documentSpec>

/** What a node says about itself, beside its identity. */
export interface DescribeFields {
  name: string
  version: string
  capabilities: readonly string[]
  httpPort: number
  udpPort: number
  /** The peer link's TCP port, when the link runs. */
  linkPort?: number | null
  addresses: readonly string[]
}

/** The signed body for GET /api/describe. */
export function signDescribe (identity: Identity, fields: DescribeFields, nonce: string | null): Buffer {
  // Fields keep their order; linkPort (added after v1 shipped) is written only when set, so documents without it keep their bytes.
  const doc = {
    v: DESCRIBE_VERSION,
    nodeId: identity.nodeId,
    publicKey: formatPublicKey(identity.publicKey),
    ...fields,
    capabilities: fields.capabilities.slice(0, DESCRIBE_CAPABILITIES_COUNT_MAX),
    linkPort: fields.linkPort ?? undefined,
    addresses: fields.addresses.slice(0, DESCRIBE_ADDRESSES_COUNT_MAX),
    nonce
  }
  // Check what we sign as a peer will: a bad field fails here, not on every peer.
  validate(documentSpec, doc, 'ASSERTION', 'own describe')
  const bytes = Buffer.from(JSON.stringify(doc), 'utf8')
  const signature = signDomain(identity.privateKey, DESCRIBE_DOMAIN, bytes).toString('base64url')
  return Buffer.concat([PREFIX, bytes, SIGNATURE_FIELD, Buffer.from(signature, 'latin1'), SUFFIX])
}

export interface DescribeExpectation {
  /** The node id the announcement (USN) claimed, if any. */
  nodeId?: string | null
  /** The nonce we sent, if any. */
  nonce?: string | null
  /** The address it was heard from, which the document must list. */
  address?: string | null
}

export interface VerifiedDescribe {
  document: DescribeDocument
  publicKey: Buffer
}

const invalid = (why: string): CanopyError => new CanopyError('DESCRIBE_INVALID', `describe: ${why}`)

/** Check a body received from a peer; throws only DESCRIBE_INVALID. */
export function verifyDescribe (body: Uint8Array, expect: DescribeExpectation = {}): VerifiedDescribe {
  if (body.length > DESCRIBE_BYTES_MAX) throw invalid(`${body.length} bytes`)
  const buf = Buffer.from(body) // a copy, bounded just above
  const sigStart = buf.length - SUFFIX.length - SIGNATURE_CHARS
  const docEnd = sigStart - SIGNATURE_FIELD.length
  if (buf.length <= FRAMING_BYTES || !buf.subarray(0, PREFIX.length).equals(PREFIX) || !buf.subarray(buf.length - SUFFIX.length).equals(SUFFIX) ||
      !buf.subarray(docEnd, sigStart).equals(SIGNATURE_FIELD)) throw invalid('framing')
  const sigText = buf.subarray(sigStart, sigStart + SIGNATURE_CHARS).toString('latin1')
  const signature = Buffer.from(sigText, 'base64url')
  // Canonical form only: the text must be exactly what the 64 bytes encode to (no spare bits set).
  if (signature.length !== SIGNATURE_BYTES || signature.toString('base64url') !== sigText) throw invalid('signature encoding')
  const docBytes = buf.subarray(PREFIX.length, docEnd)

  let raw: unknown
  try {
    raw = JSON.parse(docBytes.toString('utf8'))
  } catch {
    throw invalid('not JSON')
  }
  const document = validate(documentSpec, raw, 'DESCRIBE_INVALID', 'describe')

  const publicKey = parsePublicKey(document.publicKey)
  if (!publicKey) throw invalid('publicKey')
  if (nodeIdOf(publicKey) !== document.nodeId) throw invalid('nodeId is not the key\'s')
  if (expect.nodeId != null && expect.nodeId !== document.nodeId) throw invalid('nodeId is not the announced one')
  if (expect.nonce != null && expect.nonce !== document.nonce) throw invalid('nonce (a replay?)')
  if (expect.address != null && !document.addresses.includes(expect.address)) throw invalid(`address ${expect.address} not listed`)
  if (!verifyDomain(publicKey, DESCRIBE_DOMAIN, docBytes, signature)) throw invalid('bad signature')
  return { document, publicKey }
}
