import { test } from 'uvu'
import * as assert from 'uvu/assert'
import nacl from 'tweetnacl'
import { join } from 'node:path'
import { CanopyError } from '../../src/errors'
import { SimFiles, createLinuxFiles, createSeededRandom } from '../../src/hal'
import { loadOrCreateIdentity, nodeIdOf, NODE_ID_PATTERN, IDENTITY_FILE } from '../../src/identity'
import { keyPairFromSeed, publicKeyFromRaw, rawSeed, sign, verify, formatPublicKey, parsePublicKey, publicKeyFromText, privateKeyToPem, signDomain, verifyDomain } from '../../src/crypto'
import { tempDir } from '../helpers/tmp'

test('created once (mode 0600), loaded afterwards with the same node id', async () => {
  const d = tempDir()
  const files = createLinuxFiles()
  const r = createSeededRandom(7)
  const first = await loadOrCreateIdentity(files, r, d.path)
  assert.ok(first.created)
  assert.is(await files.mode(join(d.path, IDENTITY_FILE)), 0o600)
  const second = await loadOrCreateIdentity(files, r, d.path)
  assert.not.ok(second.created)
  assert.is(second.identity.nodeId, first.identity.nodeId)
  assert.ok(NODE_ID_PATTERN.test(first.identity.nodeId))
  assert.is(first.identity.nodeId, nodeIdOf(first.identity.publicKey))
  d.remove()
})

test('a damaged identity file is refused with a clear error, never replaced', async () => {
  const files = new SimFiles()
  await files.writeAtomic(`/d/${IDENTITY_FILE}`, Buffer.from('-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n'))
  try {
    await loadOrCreateIdentity(files, createSeededRandom(1), '/d')
    assert.unreachable()
  } catch (err) {
    assert.is((err as CanopyError).code, 'IDENTITY_INVALID')
    assert.match((err as Error).message, /move it away/)
  }
  assert.match((await files.read(`/d/${IDENTITY_FILE}`, 4096))!.toString(), /nope/, 'file untouched')
})

test('keys interoperate with tweetnacl both ways', () => {
  const r = createSeededRandom(3)
  for (let i = 0; i < 20; i++) {
    const seed = r.bytes(32)
    const ours = keyPairFromSeed(seed)
    const theirs = nacl.sign.keyPair.fromSeed(seed)
    assert.equal(Buffer.from(theirs.publicKey), ours.publicRaw, 'same public key from the same seed')
    assert.equal(rawSeed(ours.privateKey), Buffer.from(seed))
    const msg = r.bytes(1 + r.int(300))
    const sigOurs = sign(ours.privateKey, msg)
    assert.ok(nacl.sign.detached.verify(msg, sigOurs, theirs.publicKey), 'tweetnacl verifies our signature')
    const sigTheirs = nacl.sign.detached(msg, theirs.secretKey)
    assert.ok(verify(publicKeyFromRaw(theirs.publicKey), msg, sigTheirs), 'we verify tweetnacl\'s signature')
    const tampered = Buffer.from(msg); tampered[0]! ^= 1
    assert.not.ok(verify(ours.publicRaw, tampered, sigOurs))
  }
})

test('verify never throws on malformed peer input', () => {
  assert.not.ok(verify(Buffer.alloc(31), Buffer.from('x'), Buffer.alloc(64)))
  assert.not.ok(verify(Buffer.alloc(32), Buffer.from('x'), Buffer.alloc(63)))
  assert.not.ok(verify(Buffer.alloc(32, 0xff), Buffer.from('x'), Buffer.alloc(64)))
})

test('public key text: format, parse, and trust from a key string or a PEM', () => {
  const pair = keyPairFromSeed(Buffer.alloc(32, 9))
  const text = formatPublicKey(pair.publicRaw)
  assert.match(text, /^ed25519:[A-Za-z0-9_-]{43}$/)
  assert.equal(parsePublicKey(text), pair.publicRaw)
  assert.is(parsePublicKey('ed25519:short'), null)
  assert.is(parsePublicKey(text.slice(8)), null)
  assert.equal(publicKeyFromText(` ${text}\n`, 'arg'), pair.publicRaw)
  assert.equal(publicKeyFromText(privateKeyToPem(pair), 'key.pem'), pair.publicRaw)
  assert.throws(() => publicKeyFromText('hello', 'arg'), (e: unknown) => CanopyError.is(e, 'KEY_INVALID'))
})

test('domain-separated signatures do not cross domains', () => {
  const pair = keyPairFromSeed(Buffer.alloc(32, 4))
  const msg = Buffer.from('payload')
  const sig = signDomain(pair.privateKey, 'canopy test a', msg)
  assert.ok(verifyDomain(pair.publicRaw, 'canopy test a', msg, sig))
  assert.not.ok(verifyDomain(pair.publicRaw, 'canopy test b', msg, sig), 'another domain')
  assert.not.ok(verify(pair.publicRaw, msg, sig), 'the bare message')
  assert.not.ok(verifyDomain(pair.publicRaw, 'canopy test', Buffer.from(' apayload'), sig), 'no ambiguity at the boundary')
})

test.run()
