// A real process writing to the Linux flash twin (one file per block, fsync),
// killed with SIGKILL at random moments, many times; after each kill the
// store is reopened in this process and held to what the child reported as
// acknowledged: every acknowledged piece there and verifying, nothing
// deleted coming back, the bounds kept, and no byte served that does not
// match its hash.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { FlashCache } from '../../src/flash-cache'
import { createRealClock, createSeededRandom, FileFlash } from '../../src/hal'
import { check, Model } from '../flash-cache/workload'
import { testSeed } from '../helpers/seed'
import { tempDir } from '../helpers/tmp'
import { LAB_CACHE, labPiece } from './flash-cache-lab'

const KILLS = 30
const READY_MS_MAX = 20_000

interface Life { lines: string[], exit: Promise<unknown>, kill (): void }

function startWriter (dir: string, seed: number): { life: Life, ready: Promise<void> } {
  const child = spawn(process.execPath, ['-r', 'esbuild-register', join(__dirname, 'flash-cache-writer.ts'), dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const lines: string[] = []
  let partial = ''
  let onReady: () => void = () => {}
  let stderr = ''
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve
    child.on('exit', (code, signal) => { if (signal === null) reject(new Error(`writer exited ${String(code)} before it was killed: ${stderr}`)) })
    setTimeout(() => reject(new Error('writer not ready in time')), READY_MS_MAX).unref()
  })
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString()
    const parts = text.split('\n')
    partial = parts.pop()!
    for (const l of parts) { lines.push(l); if (l === 'R') onReady() }
  })
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const exit = new Promise((resolve) => child.on('exit', resolve))
  return { life: { lines, exit, kill: () => { child.kill('SIGKILL') } }, ready }
}

/** Apply a life's report to the model; a line cut off by the kill is ignored (nothing after it). */
function learn (model: Model, lines: string[]): number {
  let acks = 0
  for (const line of lines) {
    const [kind, arg] = line.split(' ')
    if (kind === 'E') { model.evicted(arg!); continue }
    if (kind === 'R' || arg === undefined) continue
    const { hash, bytes } = labPiece(Number(arg))
    model.byKey.set(hash, bytes)
    if (kind === 'P') model.putStarted(hash)
    else if (kind === 'A') { model.putAcked(hash); acks++ }
    else if (kind === 'D') model.deleteStarted(hash)
    else if (kind === 'd') model.deleteAcked(hash)
  }
  return acks
}

test(`SIGKILL a process writing to the Linux flash twin ${KILLS} times; every reopen keeps what was acknowledged`, async () => {
  const seed = testSeed('flash cache kill', 17)
  const r = createSeededRandom(seed)
  const dir = tempDir('canopy-flash-kill-')
  const model = new Model([])
  const bound = { bytes: LAB_CACHE.options.bytesMax, pieces: LAB_CACHE.options.piecesMax }
  let acks = 0
  let live: Life | null = null
  try {
    for (let kill = 0; kill < KILLS; kill++) {
      const { life, ready } = startWriter(dir.path, seed * 1000 + kill)
      live = life
      await ready
      await new Promise((resolve) => setTimeout(resolve, 20 + r.int(400)))
      life.kill()
      await life.exit
      live = null
      acks += learn(model, life.lines)

      const flash = await FileFlash.open(dir.path, LAB_CACHE.geometry)
      const cache = await FlashCache.open(flash, { ...LAB_CACHE.options, clock: createRealClock(), onEvict: (h) => model.evicted(h) })
      await cache.flush()
      await check(cache, model, bound, `after kill ${kill}`)
      // Half the time a clean close (checkpoint) before the next life, half the time straight on.
      if (r.float() < 0.5) await cache.close()
      else await flash.close()
    }
    assert.ok(acks > KILLS * 5, `${acks} acknowledged puts were checked`)
  } finally {
    live?.kill()
    dir.remove()
  }
})

test.run()
