// The signed self-description: what it says, that it verifies over the exact
// bytes received, and every way a forged, tampered, replayed or foreign one
// is refused (DESCRIBE_INVALID and nothing else).

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import nacl from 'tweetnacl'
import { CanopyError } from '../../../src/errors'
import { domainBytes, formatPublicKey, signDomain } from '../../../src/crypto'
import { createSeededRandom } from '../../../src/hal'
import { DESCRIBE_BYTES_MAX } from '../../../src/limits'
import { DESCRIBE_DOMAIN, signDescribe, verifyDescribe, type DescribeFields } from '../../../src/protocol/discovery/describe'
import { identityFor } from '../../helpers/sim-lan'
import { mutate } from '../../helpers/mutate'
import { testSeed } from '../../helpers/seed'

const me = identityFor(21)
const other = identityFor(22)
const fields: DescribeFields = { name: 'attic ☂', version: '0.1.0', capabilities: ['provider', 'resolve'], httpPort: 8787, udpPort: 8787, addresses: ['192.168.1.2', 'fd00::2'] }
const nonce = 'abcdefghijklmnop_-0123'

const code = (fn: () => unknown): string => {
  try { fn(); return 'ok' } catch (err) { return CanopyError.is(err) ? err.code : `THREW ${String(err)}` }
}

/** A body framed like ours around any document bytes, signed by `by`. */
const frame = (doc: string, by = me): Buffer => {
  const bytes = Buffer.from(doc)
  const sig = signDomain(by.privateKey, DESCRIBE_DOMAIN, bytes).toString('base64url')
  return Buffer.concat([Buffer.from('{"document":'), bytes, Buffer.from(`,"signature":"${sig}"}`)])
}

test('a signed description is JSON a person can read, and verifies with what was expected', () => {
  const body = signDescribe(me, fields, nonce)
  const json = JSON.parse(body.toString())
  assert.equal(Object.keys(json), ['document', 'signature'])
  assert.is(json.document.nodeId, me.nodeId)
  assert.is(json.document.publicKey, me.publicKeyText)
  assert.equal(json.document.addresses, fields.addresses)
  const v = verifyDescribe(body, { nodeId: me.nodeId, nonce, address: '192.168.1.2' })
  assert.equal(v.document, { v: 1, nodeId: me.nodeId, publicKey: me.publicKeyText, ...fields, linkPort: null, nonce })
  assert.not.ok('linkPort' in json.document, 'an unset link port is not written (older documents keep their bytes)')
  assert.is(verifyDescribe(signDescribe(me, { ...fields, linkPort: 8788 }, null)).document.linkPort, 8788)
  assert.ok(v.publicKey.equals(me.publicKey))
  assert.is(verifyDescribe(signDescribe(me, fields, null)).document.nonce, null)
})

test('the signature is ed25519 over "canopy describe v1" 0x00 and the exact document bytes (checked with tweetnacl)', () => {
  const body = signDescribe(me, fields, null)
  const json = JSON.parse(body.toString())
  const docBytes = body.subarray('{"document":'.length, body.length - ',"signature":"'.length - 86 - 2)
  assert.is(docBytes.toString(), JSON.stringify(json.document))
  assert.ok(nacl.sign.detached.verify(domainBytes(DESCRIBE_DOMAIN, docBytes), Buffer.from(json.signature, 'base64url'), me.publicKey))
})

test('refused: another node id than announced, a replayed nonce, an address the node does not have', () => {
  const body = signDescribe(me, fields, nonce)
  assert.is(code(() => verifyDescribe(body, { nodeId: other.nodeId })), 'DESCRIBE_INVALID')
  assert.is(code(() => verifyDescribe(body, { nonce: 'zzzzzzzzzzzzzzzzzzzzzz' })), 'DESCRIBE_INVALID')
  assert.is(code(() => verifyDescribe(signDescribe(me, fields, null), { nonce })), 'DESCRIBE_INVALID', 'a nonce was asked for and not answered')
  assert.is(code(() => verifyDescribe(body, { address: '192.168.1.66' })), 'DESCRIBE_INVALID')
})

test('refused: a forged claim to someone else\'s id, a key that does not derive the id, a wrong domain', () => {
  const doc = (o: Record<string, unknown>) => JSON.stringify({ v: 1, nodeId: me.nodeId, publicKey: me.publicKeyText, ...fields, nonce: null, ...o })
  // Signed by `other` while claiming `me`'s id and key: the signature fails.
  assert.is(code(() => verifyDescribe(frame(doc({}), other))), 'DESCRIBE_INVALID')
  // Claiming me's id with other's key (signed correctly by other): the id does not derive from the key.
  assert.is(code(() => verifyDescribe(frame(doc({ publicKey: other.publicKeyText }), other))), 'DESCRIBE_INVALID')
  // Other's id and key, honest, but the announcement (USN) said me.
  assert.is(code(() => verifyDescribe(frame(doc({ publicKey: other.publicKeyText, nodeId: other.nodeId }), other), { nodeId: me.nodeId })), 'DESCRIBE_INVALID')
  assert.is(code(() => verifyDescribe(frame(doc({ publicKey: other.publicKeyText, nodeId: other.nodeId }), other), { nodeId: other.nodeId })), 'ok')
  // The same bytes signed for another purpose do not pass as a description.
  const bytes = Buffer.from(doc({}))
  const sig = signDomain(me.privateKey, 'canopy something else v1', bytes).toString('base64url')
  assert.is(code(() => verifyDescribe(Buffer.concat([Buffer.from('{"document":'), bytes, Buffer.from(`,"signature":"${sig}"}`)]))), 'DESCRIBE_INVALID')
})

test('refused: bad framing, bad JSON, bad fields, an unknown version, oversize; unknown fields are ignored', () => {
  const doc = (o: Record<string, unknown>) => JSON.stringify({ v: 1, nodeId: me.nodeId, publicKey: me.publicKeyText, ...fields, nonce: null, ...o })
  const good = signDescribe(me, fields, null)
  for (const [what, body] of [
    ['empty', Buffer.alloc(0)],
    ['signature first', Buffer.from(JSON.stringify({ signature: JSON.parse(good.toString()).signature, document: JSON.parse(good.toString()).document }))],
    ['pretty-printed', Buffer.from(JSON.stringify(JSON.parse(good.toString()), null, 1))],
    ['trailing newline', Buffer.concat([good, Buffer.from('\n')])],
    ['not JSON inside', frame('{nope')],
    ['an array', frame('[1,2]')],
    ['version 2', frame(doc({ v: 2 }))],
    ['port 0', frame(doc({ httpPort: 0 }))],
    ['capability with spaces', frame(doc({ capabilities: ['a b'] }))],
    ['too many capabilities', frame(doc({ capabilities: Array.from({ length: 17 }, (_, i) => `c${i}`) }))],
    ['address not an IP', frame(doc({ addresses: ['printer.lan'] }))],
    ['nodeId upper case', frame(doc({ nodeId: me.nodeId.toUpperCase() }))],
    ['name too long', frame(doc({ name: 'x'.repeat(65) }))],
    ['missing field', frame(JSON.stringify({ v: 1, nodeId: me.nodeId }))],
    ['oversize', frame(doc({ padding: 'x'.repeat(DESCRIBE_BYTES_MAX) }))]
  ] as const) assert.is(code(() => verifyDescribe(body)), 'DESCRIBE_INVALID', what)
  assert.is(verifyDescribe(frame(doc({ futureField: { a: 1 } }))).document.name, fields.name, 'newer versions may add fields')
})

test('property: any change to a signed body is refused with DESCRIBE_INVALID, never anything else', () => {
  const r = createSeededRandom(testSeed('describe tamper'))
  const body = signDescribe(me, fields, nonce)
  // Every single byte changed once...
  for (let i = 0; i < body.length; i++) {
    const c = Buffer.from(body)
    c[i] = (c[i]! + 1 + r.int(255)) & 0xff
    assert.is(code(() => verifyDescribe(c, { nodeId: me.nodeId, nonce })), 'DESCRIBE_INVALID', `byte ${i}`)
  }
  // ...and 20 000 random mutations: refused unless the bytes are unchanged.
  for (let i = 0; i < 20_000; i++) {
    const c = mutate(body, r, [body], DESCRIBE_BYTES_MAX + 100)
    const result = code(() => verifyDescribe(c, { nodeId: me.nodeId, nonce }))
    if (c.equals(body)) assert.is(result, 'ok')
    else assert.is(result, 'DESCRIBE_INVALID', JSON.stringify(c.toString('latin1')))
  }
})

test('the document says what the node is: own key text format', () => {
  assert.is(JSON.parse(signDescribe(other, fields, null).toString()).document.publicKey, formatPublicKey(other.publicKey))
})

test.run()
