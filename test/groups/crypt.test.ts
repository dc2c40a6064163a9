// The per-link seal: both ends derive the same keys from their X25519
// shares; frames open in order, and a changed, replayed or foreign frame does not.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { KeyShares } from '../../src/groups/crypt'

test('sealed both ways; tampered, replayed and foreign frames fail', () => {
  const a = new KeyShares(); const b = new KeyShares()
  const sa = a.next(); const sb = b.next()
  const x = a.session(sa, sb, true)!; const y = b.session(sb, sa, false)!
  assert.ok(x !== null && y !== null)
  assert.is(a.session(sa, sb, true), null, 'a share is used once')
  const m = Buffer.from('hello group')
  const c1 = x.seal(m)!
  assert.not.ok(c1.includes(m), 'no plaintext on the wire')
  assert.equal(y.open(c1), m)
  assert.equal(x.open(y.seal(Buffer.from('back'))!), Buffer.from('back'))
  assert.is(y.open(c1), null, 'a replay fails (the count moved on)')
  x.seal(m) // dropped by the link: a gap is fine
  const c2 = x.seal(m)!
  c2[6]! ^= 1
  assert.is(y.open(c2), null, 'a changed frame fails')
  const c3 = x.seal(m)!
  assert.equal(y.open(c3), m, 'the next frame opens after a gap and a bad frame')
  const e = new KeyShares(); const se = e.next()
  const z = e.session(se, sa, false)!
  assert.is(z.open(x.seal(m)!), null, 'a third party cannot open it')
})

test.run()
