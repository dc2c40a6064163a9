// Child process for flash-cache-kill.test.ts: writes to a FlashCache on the
// Linux flash twin until it is killed, reporting on stdout (synchronous for
// pipes) what it starts and, only after the promise resolved, what was
// acknowledged:  P i / A i (put), D i / d i (delete), E hash (evicted), R (ready).
//
//   node -r esbuild-register test/lab/flash-cache-writer.ts DIR SEED

import { FlashCache } from '../../src/flash-cache'
import { createRealClock, createSeededRandom, FileFlash } from '../../src/hal'
import { LAB_CACHE, labPiece } from './flash-cache-lab'

async function main (): Promise<void> {
  const [dir, seedText] = process.argv.slice(2)
  const r = createSeededRandom(Number(seedText))
  const out = (line: string): void => { process.stdout.write(line + '\n') }
  const flash = await FileFlash.open(dir!, LAB_CACHE.geometry)
  const cache = await FlashCache.open(flash, { ...LAB_CACHE.options, clock: createRealClock(), onEvict: (h) => out(`E ${h}`) })
  out('R')
  for (;;) {
    const i = r.int(LAB_CACHE.poolSize)
    const { hash, bytes } = labPiece(i)
    if (r.float() < 0.15) {
      out(`D ${i}`)
      await cache.delete(hash)
      out(`d ${i}`)
    } else {
      out(`P ${i}`)
      await cache.put(hash, bytes)
      out(`A ${i}`)
    }
  }
}

main().catch((err: unknown) => { process.stderr.write(`writer: ${String(err)}\n`); process.exit(1) })
