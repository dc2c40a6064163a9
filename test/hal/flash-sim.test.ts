// The simulated flash's faults must really happen: a test suite that relies
// on them is only as good as they are.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { SimFlash, type FlashGeometry, type UnsyncedPolicy } from '../../src/hal'

const G: FlashGeometry = { readBytes: 1, programBytes: 8, blockBytes: 256, blockCount: 4 }

const code = async (p: Promise<unknown>): Promise<string> => {
  try { await p } catch (err) { return (err as CanopyError).code }
  return 'none'
}

async function writeTwo (policy: UnsyncedPolicy, seed = 1): Promise<{ a: Buffer, b: Buffer }> {
  const f = new SimFlash(G, { unsynced: policy, seed })
  await f.program(0, 0, Buffer.alloc(64, 0xaa)) // synced below
  await f.sync()
  await f.program(1, 0, Buffer.alloc(64, 0xbb)) // unsynced
  await f.program(2, 0, Buffer.alloc(64, 0xcc)) // unsynced
  const g = f.reboot()
  return { a: await g.read(1, 0, 64), b: await g.read(2, 0, 64) }
}

test('a cut drops unsynced writes under "drop" and keeps synced ones', async () => {
  const f = new SimFlash(G, { unsynced: 'drop' })
  await f.program(0, 0, Buffer.alloc(8, 1))
  await f.sync()
  await f.program(0, 8, Buffer.alloc(8, 2))
  assert.equal(await f.read(0, 8, 8), Buffer.alloc(8, 2), 'visible before the cut')
  const g = f.reboot()
  assert.equal(await g.read(0, 0, 8), Buffer.alloc(8, 1))
  assert.equal(await g.read(0, 8, 8), Buffer.alloc(8, 0xff), 'the unsynced program is gone')
})

test('"keep" keeps every unsynced write', async () => {
  const { a, b } = await writeTwo('keep')
  assert.equal(a, Buffer.alloc(64, 0xbb))
  assert.equal(b, Buffer.alloc(64, 0xcc))
})

test('"torn" keeps all but the last, which lands as a strict prefix', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const { a, b } = await writeTwo('torn', seed)
    assert.equal(a, Buffer.alloc(64, 0xbb))
    const n = b.indexOf(0xff)
    assert.ok(n >= 0 && n < 64, 'the last write is incomplete')
    assert.ok(b.subarray(0, n).every((x) => x === 0xcc) && b.subarray(n).every((x) => x === 0xff))
  }
})

test('"reorder" keeps an arbitrary subset, including a later write without an earlier one', async () => {
  const outcomes = new Set<string>()
  for (let seed = 1; seed <= 40; seed++) {
    const { a, b } = await writeTwo('reorder', seed)
    outcomes.add(`${a[0]!.toString(16)}/${b[0]!.toString(16)}`)
  }
  assert.ok(outcomes.has('ff/cc'), `a later write can survive an earlier one lost (saw ${[...outcomes].join(' ')})`)
  assert.ok(outcomes.has('bb/ff') && outcomes.has('bb/cc') && outcomes.has('ff/ff'))
})

test('cutPowerAfter(n) cuts right after the n-th program/erase/sync', async () => {
  const f = new SimFlash(G, { unsynced: 'drop' })
  f.cutPowerAfter(3)
  await f.program(0, 0, Buffer.alloc(8, 1))
  await f.sync()
  await f.program(0, 8, Buffer.alloc(8, 2)) // third: completes, then power is lost
  assert.not.ok(f.isPowered)
  assert.is(await code(f.program(0, 16, Buffer.alloc(8, 3))), 'FLASH_POWER_CUT')
  assert.is(await code(f.read(0, 0, 8)), 'FLASH_POWER_CUT')
  const g = f.reboot()
  assert.equal(await g.read(0, 0, 8), Buffer.alloc(8, 1))
  assert.equal(await g.read(0, 8, 8), Buffer.alloc(8, 0xff))
  assert.ok(g.isPowered)
})

test('the five littlefs bad-block behaviours', async () => {
  const f = new SimFlash(G)
  f.setBadBlock(0, 'prog-error')
  f.setBadBlock(1, 'erase-error')
  f.setBadBlock(2, 'read-error')
  assert.is(await code(f.program(0, 0, Buffer.alloc(8, 1))), 'FLASH_IO')
  assert.is(await code(f.erase(1)), 'FLASH_IO')
  assert.is(await code(f.read(2, 0, 8)), 'FLASH_IO')
  f.setBadBlock(3, 'prog-noop')
  await f.program(3, 0, Buffer.alloc(8, 1))
  assert.equal(await f.read(3, 0, 8), Buffer.alloc(8, 0xff), 'prog-noop: silently nothing written')
  f.setBadBlock(3, null)
  await f.program(3, 0, Buffer.alloc(8, 1))
  f.setBadBlock(3, 'erase-noop')
  await f.erase(3)
  assert.equal(await f.read(3, 0, 8), Buffer.alloc(8, 1), 'erase-noop: silently nothing erased')
  const g = f.reboot()
  assert.is(await code(g.read(2, 0, 8)), 'FLASH_IO', 'bad blocks persist across reboots')
})

test('injected EIO and ENOSPC: once, after a skip, and persistently', async () => {
  const f = new SimFlash(G)
  f.injectError('program', 'ENOSPC', { skip: 1 })
  await f.program(0, 0, Buffer.alloc(8))
  assert.is(await code(f.program(0, 8, Buffer.alloc(8))), 'FLASH_NO_SPACE')
  await f.program(0, 8, Buffer.alloc(8))
  f.injectError('sync', 'EIO', { times: Infinity })
  for (let i = 0; i < 3; i++) assert.is(await code(f.sync()), 'FLASH_IO')
  f.clearErrors()
  await f.sync()
})

test('wear is counted per block and a worn-out block goes bad', async () => {
  const f = new SimFlash(G, { eraseCyclesMax: 3 })
  for (let i = 0; i < 3; i++) await f.erase(1)
  assert.is(f.wear(1), 3)
  assert.is(f.wear(0), 0)
  await f.program(1, 0, Buffer.alloc(8, 1))
  await f.erase(1)
  assert.is(await code(f.program(1, 0, Buffer.alloc(8, 1))), 'FLASH_IO')
})

test('programs over unerased bytes are refused (no rewrite in place)', async () => {
  const f = new SimFlash(G)
  await f.program(0, 0, Buffer.alloc(8, 1))
  assert.is(await code(f.program(0, 0, Buffer.alloc(8, 2))), 'FLASH_NOT_ERASED')
})

test('bit flips reach durable and visible bytes; images round-trip', async () => {
  const f = new SimFlash(G)
  await f.program(0, 0, Buffer.alloc(8, 0))
  await f.sync()
  f.flipBits(0, 3, 0x10)
  assert.is((await f.read(0, 3, 1))[0], 0x10)
  const copy = SimFlash.fromImage(G, f.durableImage())
  assert.is((await copy.read(0, 3, 1))[0], 0x10)
})

test('stats count operations and bytes', async () => {
  const f = new SimFlash(G)
  await f.program(0, 0, Buffer.alloc(16))
  await f.read(0, 0, 10)
  await f.erase(0)
  await f.sync()
  assert.equal(f.stats, { reads: 1, programs: 1, erases: 1, syncs: 1, bytesRead: 10, bytesProgrammed: 16 })
  assert.is(f.writeCount, 3)
})

test.run()
