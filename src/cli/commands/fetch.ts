// canopy fetch URL: a file by its manifest URL, every piece verified. Through
// the local agent (which shares the download with the LAN) or, when none
// runs, alone from the origin. A progress bar on a terminal, JSON lines
// otherwise; a summary at the end (bytes from peers and from the origin).

import { closeSync, openSync, renameSync, rmSync, writeSync } from 'node:fs'
import { basename } from 'node:path'
import { checkTrust, fetchBody, originSource, parseManifest, createTransfer, createWanGate, type Transfer } from '../../content'
import { CanopyError } from '../../errors'
import { createRealClock } from '../../hal'
import { httpOpen, readBody } from '../../http/client'
import { MANIFEST_BYTES_MAX } from '../../limits'
import { AGENT_FLAG, agentBase, agentJson, callAgent } from '../agent-client'
import { flagString, TRUST_FLAG, trustFlags } from '../args'
import type { Command } from '../command'

type Write = (b: Buffer, at?: number) => void

export const fetchCommand: Command = {
  name: 'fetch',
  args: 'URL',
  summary: 'fetch a file by its manifest URL, verified (via the local agent, else alone)',
  positionals: { min: 1, max: 1 },
  flags: [
    { name: 'out', value: 'F', help: 'file to write (default: its name)' },
    AGENT_FLAG,
    TRUST_FLAG
  ],
  async run (args, io) {
    const url = args.positionals[0]!
    const trust = trustFlags(args)
    const base = agentBase(flagString(args, 'agent'))
    const tty = io.stdout.isTTY === true
    const t0 = Date.now()
    let last = 0
    let path = ''
    /** Bytes into F.part, renamed at the end: a failed fetch never leaves a file that looks complete. */
    const into = async (name: string, total: number, fill: (write: Write, show: (n: number) => void) => Promise<void>): Promise<void> => {
      path = flagString(args, 'out') ?? (basename(name).replace(/^\.+/, '_') || 'download')
      const part = `${path}.part`
      const fd = openSync(part, 'w', 0o644)
      try {
        await fill((b, at) => { writeSync(fd, b, 0, b.length, at ?? null) }, (n) => {
          const now = Date.now()
          if (now - last < (tty ? 100 : 1_000) && n < total) return
          last = now
          const f = total === 0 ? 1 : n / total
          if (tty) io.stderr.write(`\r[${'#'.repeat(Math.round(f * 30)).padEnd(30, '.')}] ${Math.floor(f * 100)}% of ${(total / 1e6).toFixed(1)} MB`)
          else io.stdout.write(JSON.stringify({ event: 'progress', doneBytes: n, totalBytes: total }) + '\n')
        })
        renameSync(part, path)
      } catch (err) {
        rmSync(part, { force: true })
        throw err
      } finally {
        closeSync(fd)
      }
    }
    const up = await callAgent(base, '/healthz', { timeoutMs: 1_000 }).then((r) => r.status === 200, () => false)
    const [bytes, fromPeersBytes, fromOriginBytes] = await (up ? viaAgent : alone)(url, trust, into, base)
    const seconds = (Date.now() - t0) / 1000
    const via = up ? 'agent' : 'alone'
    io.stdout.write(tty ? `\n${path}: ${bytes} bytes in ${seconds} s (${via}), ${fromPeersBytes} from peers, ${fromOriginBytes} from the origin\n` : JSON.stringify({ event: 'done', file: path, bytes, fromPeersBytes, fromOriginBytes, seconds, via }) + '\n')
    return 0
  }
}

type Into = (name: string, total: number, fill: (write: Write, show: (n: number) => void) => Promise<void>) => Promise<void>

async function viaAgent (url: string, trust: string[], into: Into, base: URL): Promise<number[]> {
  const q = new URLSearchParams([['manifest', url], ...trust.map((k): [string, string] => ['trust', k])])
  const res = await httpOpen(new URL(`/api/content?${q.toString()}`, base).href, { idleMs: 0 })
  if (res.statusCode !== 200) {
    let message = `HTTP ${res.statusCode ?? 0}`
    try { message = JSON.parse((await readBody(res, 65_536)).toString()).error.message } catch { /* not our JSON */ }
    throw new CanopyError('AGENT_UNREACHABLE', `the agent refused: ${message}`)
  }
  const total = Number(res.headers['content-length'])
  let n = 0
  await into(/filename="([^"]*)"/.exec(String(res.headers['content-disposition']))?.[1] ?? '', total, async (write, show) => {
    for await (const c of res) {
      write(c as Buffer)
      show(n += (c as Buffer).length)
    }
    if (n !== total) throw new CanopyError('UPSTREAM_FAILED', 'cut off (failed or vetoed): see canopy status')
  })
  const list = ((await agentJson(base, '/api/status')) as { transfers?: { list?: Array<Record<string, number>> } }).transfers?.list ?? []
  const t = list.find((x) => (x.id as unknown) === res.headers['x-canopy-content']) ?? {}
  return [n, (t.fromPeersBytes ?? 0) + (t.fromProviderBytes ?? 0), t.fromOriginBytes ?? 0]
}

async function alone (url: string, trust: string[], into: Into): Promise<number[]> {
  const m = checkTrust(parseManifest(await fetchBody(url, MANIFEST_BYTES_MAX)), trust)
  const keep = setInterval(() => {}, 1_000) // the engine's timers do not hold the process open
  let t!: Transfer
  try {
    await into(m.name, m.size, async (write, show) => {
      const clock = createRealClock()
      await new Promise<void>((ended) => {
        t = createTransfer(m, {
          clock,
          store: { has: () => false, put: async (h, b) => { m.pieces.forEach((x, i) => { if (x === h) write(b, i * m.pieceSize) }) } },
          events: { stored: () => { show(t.doneBytes) }, ended }
        })
        t.add(originSource(m, 4, createWanGate(clock, 0, '')))
      })
      if (t.state !== 'done') throw t.error ?? new CanopyError('CONTENT_UNAVAILABLE', 'stopped')
    })
  } finally {
    clearInterval(keep)
  }
  return [m.size, 0, t.from.origin]
}
