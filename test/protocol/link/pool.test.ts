// The frame pool: slots reused once released, every holder counted, a
// release too many caught, plain Buffers when full or out of range.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../../src/errors'
import { createFramePool } from '../../../src/protocol/link'

const isAssertion = (e: unknown): boolean => CanopyError.is(e, 'ASSERTION')

test('a released slot is reused; a held one is not', () => {
  const pool = createFramePool(4096, 4, 2, 1024)
  const a = pool.take(2000)
  const b = pool.take(3000)
  assert.is(pool.counters.inUse, 2)
  pool.retain(a)
  pool.release(a)
  assert.ok(pool.held(a), 'still held once')
  pool.release(a)
  assert.not.ok(pool.held(a))
  const c = pool.take(1500)
  assert.is(c.byteOffset, a.byteOffset, 'the freed slot came back first')
  assert.is.not(c.byteOffset, b.byteOffset)
  pool.release(b); pool.release(c)
  assert.is(pool.counters.inUse, 0)
})

test('a release too many, or a stale view touching a reused slot, is an assertion', () => {
  const pool = createFramePool(4096, 2, 2, 1024)
  const a = pool.take(2000)
  pool.release(a)
  assert.throws(() => { pool.release(a) }, isAssertion, 'double release')
  const b = pool.take(2000) // reuses a's slot
  assert.is(b.byteOffset, a.byteOffset)
  assert.throws(() => { pool.retain(a) }, isAssertion, 'the old view cannot take a reference on the new frame')
  assert.ok(pool.held(b))
  pool.release(b)
})

test('frames out of range or past the bound are plain Buffers; retain and release ignore them', () => {
  const pool = createFramePool(4096, 2, 2, 1024)
  const small = pool.take(100)
  const big = pool.take(5000)
  assert.not.ok(pool.held(small) || pool.held(big))
  const x = pool.take(2000); const y = pool.take(2000)
  const z = pool.take(2000)
  assert.is(pool.counters.exhausted, 1)
  assert.not.ok(pool.held(z))
  pool.retain(z); pool.release(z); pool.release(small); pool.release(big)
  pool.release(x); pool.release(y)
  assert.is(pool.counters.inUse, 0)
  assert.is(pool.counters.slabs, 1)
})

test.run()
