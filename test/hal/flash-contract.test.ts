// One contract for both flash twins: what the flash cache may rely on.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../src/errors'
import { FileFlash, SimFlash, type Flash, type FlashGeometry } from '../../src/hal'
import { tempDir } from '../helpers/tmp'

const GEOMETRY: FlashGeometry = { readBytes: 16, programBytes: 16, blockBytes: 4096, blockCount: 8 }

interface Twin {
  name: string
  open (): Promise<Flash>
  /** Reopen after a clean sync (power cycle or process restart). */
  reopen (old: Flash): Promise<Flash>
  done (): void
}

const twins: Array<[string, () => Twin]> = [
  ['sim', () => ({
    name: 'sim',
    open: async () => new SimFlash(GEOMETRY, { unsynced: 'drop' }),
    reopen: async (old) => (old as SimFlash).reboot(),
    done () {}
  })],
  ['file', () => {
    const dir = tempDir()
    return {
      name: 'file',
      open: () => FileFlash.open(dir.path, GEOMETRY),
      reopen: async (old) => { await old.close(); return FileFlash.open(dir.path, GEOMETRY) },
      done: dir.remove
    }
  }]
]

async function rejects (p: Promise<unknown>, code: string): Promise<void> {
  try {
    await p
  } catch (err) {
    assert.ok(CanopyError.is(err), `coded error, got ${String(err)}`)
    assert.is(err.code, code)
    return
  }
  assert.unreachable(`expected ${code}`)
}

for (const [name, make] of twins) {

  test(`${name}: a fresh device reads erased (0xff)`, async () => {
    const t = make()
    const f = await t.open()
    assert.equal(f.geometry, GEOMETRY)
    const b = await f.read(3, 0, 4096)
    assert.ok(b.every((x) => x === 0xff))
    await f.close(); t.done()
  })

  test(`${name}: program, read back, erase`, async () => {
    const t = make()
    const f = await t.open()
    const data = Buffer.alloc(64, 0x5a)
    await f.program(1, 128, data)
    assert.equal(await f.read(1, 128, 64), data)
    assert.ok((await f.read(1, 0, 128)).every((x) => x === 0xff), 'bytes before the program stay erased')
    assert.ok((await f.read(1, 192, 64)).every((x) => x === 0xff), 'bytes after stay erased')
    await f.erase(1)
    assert.ok((await f.read(1, 0, 4096)).every((x) => x === 0xff))
    await f.close(); t.done()
  })

  test(`${name}: synced data survives a reopen`, async () => {
    const t = make()
    let f = await t.open()
    const data = Buffer.from('canopy'.repeat(8).slice(0, 48))
    await f.program(7, 4096 - 48, data)
    await f.program(0, 0, Buffer.alloc(16, 1))
    await f.erase(0)
    await f.sync()
    f = await t.reopen(f)
    assert.equal(await f.read(7, 4096 - 48, 48), data)
    assert.ok((await f.read(0, 0, 16)).every((x) => x === 0xff), 'a synced erase stays erased')
    await f.close(); t.done()
  })

  test(`${name}: out-of-range and misaligned operations are refused`, async () => {
    const t = make()
    const f = await t.open()
    const bad = async (fn: () => Promise<unknown>): Promise<void> => {
      try { await fn() } catch (err) { assert.is((err as CanopyError).code, 'FLASH_BAD_ADDRESS'); return }
      assert.unreachable('expected FLASH_BAD_ADDRESS')
    }
    await bad(() => f.read(8, 0, 16))
    await bad(() => f.read(0, 8, 16))
    await bad(() => f.read(0, 4080, 32))
    await bad(() => f.program(0, 0, Buffer.alloc(15)))
    await bad(() => f.program(-1, 0, Buffer.alloc(16)))
    await bad(() => f.erase(9))
    await f.close(); t.done()
  })

  test(`${name}: a closed device refuses work`, async () => {
    const t = make()
    const f = await t.open()
    await f.close()
    await rejects(f.read(0, 0, 16), 'FLASH_CLOSED')
    t.done()
  })
}

test('file: a different geometry on disk is refused', async () => {
  const dir = tempDir()
  const f = await FileFlash.open(dir.path, GEOMETRY)
  await f.close()
  await rejects(FileFlash.open(dir.path, { ...GEOMETRY, blockCount: 16 }), 'FLASH_GEOMETRY_MISMATCH')
  dir.remove()
})

test('file: more blocks than open handles still read back correctly', async () => {
  const dir = tempDir()
  const g = { ...GEOMETRY, blockCount: 64 }
  const f = await FileFlash.open(dir.path, g)
  for (let b = 0; b < 64; b++) await f.program(b, 0, Buffer.alloc(16, b))
  await f.sync()
  for (let b = 0; b < 64; b++) assert.equal(await f.read(b, 0, 16), Buffer.alloc(16, b))
  await f.close()
  dir.remove()
})

test('file: a program past the end of a short block file keeps the gap erased', async () => {
  const dir = tempDir()
  const f = await FileFlash.open(dir.path, GEOMETRY)
  await f.program(2, 0, Buffer.alloc(16, 7))
  await f.program(2, 1024, Buffer.alloc(16, 9))
  const gap = await f.read(2, 16, 1008)
  assert.ok(gap.every((x) => x === 0xff))
  await f.close()
  dir.remove()
})

test.run()
