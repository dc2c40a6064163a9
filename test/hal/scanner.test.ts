// The scanner hook's runner: the file reaches the command as its last
// argument, exit 0 is clean, anything else (status, missing command, a hang)
// vetoes, and the temporary copy is always removed.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { readdirSync } from 'node:fs'
import { Readable } from 'node:stream'
import { commandScanner } from '../../src/hal'
import { tempDir } from '../helpers/tmp'

test('clean, vetoed, cannot run, too slow; no temporary file left', async () => {
  const dir = tempDir()
  try {
    const body = (): Readable => Readable.from([Buffer.from('EICAR-ish test bytes')])
    const clean = await commandScanner(['sh', '-c', 'grep -q EICAR "$1"', 'scan'], dir.path).scan('a.bin', body())
    assert.ok(clean.clean, clean.detail)
    const veto = await commandScanner(['sh', '-c', 'echo found it; exit 1', 'scan'], dir.path).scan('a.bin', body())
    assert.not.ok(veto.clean)
    assert.match(veto.detail, /exited 1: found it/)
    const missing = await commandScanner(['/nonexistent/scanner'], dir.path).scan('a.bin', body())
    assert.not.ok(missing.clean)
    const slow = await commandScanner(['sh', '-c', 'sleep 5', 'scan'], dir.path, 200).scan('../../etc/passwd', body())
    assert.not.ok(slow.clean)
    assert.match(slow.detail, /killed after 200 ms/, slow.detail)
    assert.equal(readdirSync(dir.path), [])
  } finally {
    dir.remove()
  }
})

test.run()
