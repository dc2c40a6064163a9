import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { CanopyError } from '../../src/errors'
import { SimFiles, createLinuxFiles, type Files } from '../../src/hal'
import { tempDir } from '../helpers/tmp'

async function contract (files: Files, dir: string): Promise<void> {
  const p = join(dir, 'sub', 'x.json')
  await files.mkdir(join(dir, 'sub'))
  assert.is(await files.read(p, 100), null, 'a missing file reads as null')
  await files.writeAtomic(p, Buffer.from('hello'), 0o600)
  assert.is((await files.read(p, 100))!.toString(), 'hello')
  assert.is(await files.mode(p), 0o600)
  await files.writeAtomic(p, Buffer.from('hello again'))
  assert.is((await files.read(p, 100))!.toString(), 'hello again')
  try {
    await files.read(p, 5)
    assert.unreachable('too large')
  } catch (err) {
    assert.is((err as CanopyError).code, 'FILE_TOO_LARGE')
  }
  await files.remove(p)
  await files.remove(p)
  assert.is(await files.read(p, 100), null)
}

test('contract: Linux files, and no temp files left behind', async () => {
  const d = tempDir()
  await contract(createLinuxFiles(), d.path)
  assert.equal(readdirSync(join(d.path, 'sub')), [])
  d.remove()
})

test('contract: simulated files', async () => {
  await contract(new SimFiles(), '/sim')
})

test('Linux files: the requested mode holds whatever the umask', async () => {
  const d = tempDir()
  const old = process.umask(0o077)
  try {
    await createLinuxFiles().writeAtomic(join(d.path, 'pub'), Buffer.from('x'), 0o644)
    assert.is(await createLinuxFiles().mode(join(d.path, 'pub')), 0o644)
  } finally {
    process.umask(old)
    d.remove()
  }
})

test.run()
