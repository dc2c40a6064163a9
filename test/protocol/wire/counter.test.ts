// The send counter: block reservations reach the file before any value from
// them is used, restarts and power cuts never reuse a value, and a damaged
// file still yields values above anything plausible.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimFiles, createSeededRandom, type Files } from '../../../src/hal'
import { memoryLogger } from '../../../src/log'
import { SendCounter } from '../../../src/protocol'
import { testSeed } from '../../helpers/seed'

const PATH = '/sim/wire-counter.json'
const open = (files: Files, blockCount = 8, wallMs = 0): Promise<SendCounter> => SendCounter.open({ files, path: PATH, wallMs: () => wallMs, blockCount })
const reservedOnFile = async (files: Files): Promise<number> => JSON.parse((await files.read(PATH, 256))!.toString()).reserved

/** Files whose writes wait until released: "the write has not reached flash yet". */
class SlowFiles extends SimFiles {
  held: Array<() => void> = []
  hold = false
  override async writeAtomic (path: string, data: Uint8Array, mode?: number): Promise<void> {
    if (this.hold) await new Promise<void>((resolve) => this.held.push(resolve))
    return super.writeAtomic(path, data, mode)
  }
  release (): void { for (const r of this.held.splice(0)) r() }
}

test('values start at 1; the first block is on file before open returns', async () => {
  const files = new SimFiles()
  const c = await open(files)
  assert.is(await reservedOnFile(files), 8)
  assert.equal([c.next(), c.next(), c.next()], [1, 2, 3])
})

test('a value is never handed out before its reservation is on file', async () => {
  const files = new SlowFiles()
  files.hold = true
  let opened = false
  const pending = open(files).then((c) => { opened = true; return c })
  await new Promise((r) => setImmediate(r))
  assert.not.ok(opened, 'open waits for the first reservation')
  files.release()
  const c = await pending
  files.hold = true
  const got: Array<number | null> = []
  for (let i = 0; i < 12; i++) got.push(c.next())
  assert.equal(got, [1, 2, 3, 4, 5, 6, 7, 8, null, null, null, null], 'the next block is not used until written')
  assert.is(c.exhausted, 4)
  assert.is(await reservedOnFile(files), 8)
  files.release()
  await new Promise((r) => setImmediate(r))
  assert.is(await reservedOnFile(files), 16)
  assert.is(c.next(), 9)
})

test('property: restarts and power cuts at random points never reuse a value', async () => {
  const rnd = createSeededRandom(testSeed('counter restarts'))
  const files = new SimFiles()
  let highest = 0
  for (let boot = 0; boot < 60; boot++) {
    const c = await open(files, 16)
    const uses = rnd.int(40)
    for (let i = 0; i < uses; i++) {
      const v = c.next()
      if (v === null) { await new Promise((r) => setImmediate(r)); continue }
      assert.ok(v > highest, `boot ${boot}: ${v} after ${highest}`)
      highest = v
    }
    if (rnd.int(2) === 0) await c.close() // else: power cut, the object just vanishes
  }
})

test('a damaged file starts above a wall-clock guess and says so', async () => {
  const files = new SimFiles()
  await files.writeAtomic(PATH, Buffer.from('{"format":"canopy-wire-counter","reserved":"oops"}'))
  const { logger, lines } = memoryLogger()
  const c = await SendCounter.open({ files, path: PATH, wallMs: () => 1_700_000_000_000, blockCount: 8, log: logger })
  assert.ok(c.next()! > 1_700_000_000_000 * 1024)
  assert.ok(lines.some((l) => l.level === 'error' && /damaged/.test(String(l.msg))))
})

test.run()
