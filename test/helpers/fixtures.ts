// Golden bytes: committed once, never regenerated. A test compares what the
// encoder makes today with the committed file and decodes the file. A
// missing file is written only with CANOPY_WRITE_FIXTURES=1 (adding a new
// fixture); an existing one is never overwritten.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const DIR = join(__dirname, '..', 'fixtures')

/** The committed bytes of fixtures/<path>.hex (hex, whitespace ignored). */
export function golden (path: string, made: Buffer): Buffer {
  const file = join(DIR, `${path}.hex`)
  if (!existsSync(file)) {
    if (process.env.CANOPY_WRITE_FIXTURES !== '1') throw new Error(`fixture ${path}.hex is missing (set CANOPY_WRITE_FIXTURES=1 once to add it)`)
    writeFileSync(file, made.toString('hex').replace(/(.{64})/g, '$1\n').trim() + '\n')
  }
  return Buffer.from(readFileSync(file, 'utf8').replace(/\s+/g, ''), 'hex')
}
