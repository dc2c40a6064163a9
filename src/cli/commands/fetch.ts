// canopy fetch URL: a file by its manifest URL, every piece verified. Through
// the local agent (which shares the download with the LAN) or, when none
// runs, alone from the origin. A progress bar on a terminal, JSON lines
// otherwise; a summary at the end (bytes from peers and from the origin).

import { createHash } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename } from 'node:path'
import { checkTrust, originSource, parseManifest, Transfer, WanGate } from '../../content'
import { formatPublicKey, publicKeyFromText } from '../../crypto'
import { CanopyError } from '../../errors'
import { createRealClock } from '../../hal'
import { httpOpen, readBody } from '../../http/client'
import { MANIFEST_BYTES_MAX } from '../../limits'
import { agentBase, agentJson, callAgent } from '../agent-client'
import { flagList, flagString } from '../args'
import type { CliIo, Command } from '../command'

interface Done { name: string, bytes: number, sha256: string, fromPeersBytes: number, fromOriginBytes: number, seconds: number, via: string }

export const fetchCommand: Command = {
  name: 'fetch',
  args: 'URL',
  summary: 'fetch a file by its manifest URL, verified (through the local agent, alone when none runs)',
  positionals: { min: 1, max: 1 },
  flags: [
    { name: 'out', value: 'F', help: 'file to write (default: the name in the manifest)' },
    { name: 'agent', value: 'URL', help: 'the agent to fetch through (default http://127.0.0.1:8787)' },
    { name: 'trust', value: 'KEY_OR_FILE', repeatable: true, help: 'a publisher key to accept, or a file holding one' }
  ],
  async run (args, io) {
    const url = args.positionals[0]!
    const trust = flagList(args, 'trust').map((t) => formatPublicKey(publicKeyFromText(existsSync(t) ? readFileSync(t, 'utf8') : t, t)))
    const base = agentBase(flagString(args, 'agent'))
    const t0 = Date.now()
    const show = progress(io)
    const up = await callAgent(base, '/healthz', { timeoutMs: 1_000 }).then((r) => r.status === 200, () => false)
    const d = up ? await viaAgent(base, url, trust, flagString(args, 'out'), show) : await alone(url, trust, flagString(args, 'out'), show)
    d.seconds = (Date.now() - t0) / 1000
    if (io.stdout.isTTY === true) {
      const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`
      io.stderr.write('\n')
      io.stdout.write(`${d.name}: ${mb(d.bytes)} in ${d.seconds.toFixed(1)} s (${d.via}); from peers ${mb(d.fromPeersBytes)}, from the origin ${mb(d.fromOriginBytes)}; sha256 ${d.sha256}\n`)
    } else {
      io.stdout.write(JSON.stringify({ event: 'done', ...d }) + '\n')
    }
    return 0
  }
}

type Show = (done: number, total: number) => void

function progress (io: CliIo): Show {
  let last = 0
  return (done, total) => {
    const now = Date.now()
    if (now - last < (io.stdout.isTTY === true ? 100 : 1_000) && done < total) return
    last = now
    if (io.stdout.isTTY === true) {
      const f = total === 0 ? 1 : done / total
      io.stderr.write(`\r[${'#'.repeat(Math.round(f * 30)).padEnd(30, '.')}] ${(f * 100).toFixed(0).padStart(3)}% ${(done / 1e6).toFixed(1)}/${(total / 1e6).toFixed(1)} MB`)
    } else {
      io.stdout.write(JSON.stringify({ event: 'progress', doneBytes: done, totalBytes: total }) + '\n')
    }
  }
}

/** Write to F.part, then rename: a failed fetch never leaves a file that looks complete. */
function output (path: string): { write (b: Buffer, at?: number): void, close (ok: boolean): void } {
  const part = `${path}.part`
  const fd = openSync(part, 'w', 0o644)
  return {
    write: (b, at) => { writeSync(fd, b, 0, b.length, at ?? null) },
    close: (ok) => {
      closeSync(fd)
      if (ok) renameSync(part, path)
      else rmSync(part, { force: true })
    }
  }
}

const safeName = (name: string): string => basename(name).replace(/^\.+/, '_') || 'download'

async function viaAgent (base: URL, url: string, trust: string[], out: string | undefined, show: Show): Promise<Done> {
  const q = new URLSearchParams({ manifest: url })
  for (const k of trust) q.append('trust', k)
  const res = await httpOpen(new URL(`/api/content?${q.toString()}`, base).href, { idleMs: 0 })
  if (res.statusCode !== 200) {
    const body = await readBody(res, 64 * 1024).catch(() => Buffer.alloc(0))
    let message = `HTTP ${res.statusCode ?? 0}`
    try { message = JSON.parse(body.toString()).error.message } catch { /* not our JSON */ }
    throw new CanopyError('AGENT_UNREACHABLE', `the agent refused: ${message}`)
  }
  const total = Number(res.headers['content-length'])
  const id = String(res.headers['x-canopy-content'])
  const name = /filename="([^"]*)"/.exec(String(res.headers['content-disposition']))?.[1] ?? 'download'
  const file = output(out ?? safeName(name))
  const hash = createHash('sha256')
  let n = 0
  try {
    for await (const c of res) {
      file.write(c as Buffer)
      hash.update(c as Buffer)
      n += (c as Buffer).length
      show(n, total)
    }
    if (n !== total) throw new CanopyError('UPSTREAM_FAILED', `the agent sent ${n} of ${total} bytes (the transfer failed or was vetoed; see canopy status)`)
    file.close(true)
  } catch (err) {
    file.close(false)
    throw CanopyError.from(err, 'UPSTREAM_FAILED', 'the transfer broke off')
  }
  const list = ((await agentJson(base, '/api/status')) as { transfers?: { list?: Array<Record<string, number>> } }).transfers?.list ?? []
  const t = list.find((x) => (x.id as unknown) === id) ?? {}
  return { name, bytes: n, sha256: hash.digest('hex'), fromPeersBytes: (t.fromPeersBytes ?? 0) + (t.fromProviderBytes ?? 0), fromOriginBytes: t.fromOriginBytes ?? 0, seconds: 0, via: 'agent' }
}

async function alone (url: string, trust: string[], out: string | undefined, show: Show): Promise<Done> {
  const res = await httpOpen(url)
  if (res.statusCode !== 200) { res.resume(); throw new CanopyError('UPSTREAM_FAILED', `GET ${url}: HTTP ${res.statusCode ?? 0}`) }
  const m = checkTrust(parseManifest(await readBody(res, MANIFEST_BYTES_MAX)), trust)
  const file = output(out ?? safeName(m.name))
  const clock = createRealClock()
  const keep = setInterval(() => {}, 1_000) // the engine's timers do not hold the process open
  try {
    const t = new Transfer(m, {
      clock,
      store: {
        has: () => false,
        put: async (h, b) => { m.pieces.forEach((x, i) => { if (x === h) file.write(b, i * m.pieceSize) }) }
      },
      events: { stored: () => { show(t.doneBytes, m.size) } }
    })
    await new Promise<void>((resolve, reject) => {
      const check = setInterval(() => {
        if (t.state === 'running') return
        clearInterval(check)
        if (t.state === 'done') resolve()
        else reject(t.error ?? new CanopyError('CONTENT_UNAVAILABLE', 'the transfer stopped'))
      }, 50)
      t.addSource(originSource(m, 4, new WanGate(clock, 0, '')))
    })
    file.close(true)
    return { name: m.name, bytes: m.size, sha256: hashFile(out ?? safeName(m.name)), fromPeersBytes: 0, fromOriginBytes: t.bytesFrom.origin, seconds: 0, via: 'alone, no agent running' }
  } catch (err) {
    file.close(false)
    throw err
  } finally {
    clearInterval(keep)
  }
}

function hashFile (path: string): string {
  const h = createHash('sha256')
  const fd = openSync(path, 'r')
  const buf = Buffer.allocUnsafe(1 << 20)
  try {
    for (let n; (n = readSync(fd, buf)) > 0;) h.update(buf.subarray(0, n))
  } finally {
    closeSync(fd)
  }
  return h.digest('hex')
}
