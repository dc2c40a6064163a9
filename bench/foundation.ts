// Foundation figures: bundle size, start to /healthz beside a bare `node -e ""`,
// RSS idle and after 10 000 /api/status requests under the device flags.

import { spawn } from 'node:child_process'
import { statSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { BUNDLE_BYTES_MAX } from '../src/limits'
import { agentUrl, builtBundle, NODE_FLAGS, runBundle } from '../test/helpers/bundle'
import { median, mib, ms, type Bench, type Row } from './table'

const RUNS = 7

function timeNodeNoop (): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const c = spawn(process.execPath, [...NODE_FLAGS, '-e', ''], { stdio: 'ignore' })
    c.on('exit', () => resolve(performance.now() - t0))
    c.on('error', reject)
  })
}

function get (agent: Agent, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode ?? 0)) })
    req.on('error', reject)
    req.end()
  })
}

async function timeAgentReady (): Promise<number> {
  const t0 = performance.now()
  const run = await runBundle(['agent', '--http', '127.0.0.1:0', '--data', 'state'])
  try {
    const base = await agentUrl(run)
    const agent = new Agent({ keepAlive: false })
    while (await get(agent, `${base}/healthz`).catch(() => 0) !== 200) await new Promise((r) => setTimeout(r, 2))
    return performance.now() - t0
  } finally {
    run.child.kill('SIGTERM')
    await run.exited
    run.cleanup()
  }
}

async function rss (pid: number): Promise<number> {
  const { readFileSync } = await import('node:fs')
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? NaN : Number(m[1]) * 1024
}

async function memory (): Promise<{ idle: number, warm: number, after: number }> {
  const run = await runBundle(['agent', '--http', '127.0.0.1:0', '--data', 'state'])
  try {
    const base = await agentUrl(run)
    await new Promise((r) => setTimeout(r, 2000))
    const idle = await rss(run.child.pid!)
    const batch = async (): Promise<number> => {
      const agent = new Agent({ keepAlive: true, maxSockets: 8 })
      let sent = 0
      const worker = async (): Promise<void> => { while (sent < 10_000) { sent++; await get(agent, `${base}/api/status`) } }
      await Promise.all(Array.from({ length: 8 }, worker))
      agent.destroy()
      await new Promise((r) => setTimeout(r, 1000))
      return rss(run.child.pid!)
    }
    const warm = await batch()
    const after = await batch()
    return { idle, warm, after }
  } finally {
    run.child.kill('SIGTERM')
    await run.exited
    run.cleanup()
  }
}

const delta = (a: number, b: number): string => `${a >= b ? '+' : ''}${mib(a - b)}`

export const foundationBench: Bench = {
  name: 'foundation (issue 2)',
  async run (): Promise<Row[]> {
    const bytes = statSync(await builtBundle()).size
    const bare: number[] = []
    const ready: number[] = []
    for (let i = 0; i < RUNS; i++) {
      bare.push(await timeNodeNoop())
      ready.push(await timeAgentReady())
    }
    const over = median(ready) - median(bare)
    const mem = await memory()
    return [
      { what: 'bundle size', value: `${(bytes / 1000).toFixed(1)} KB`, target: `≤ ${BUNDLE_BYTES_MAX / 1000} KB`, ok: bytes <= BUNDLE_BYTES_MAX },
      { what: `start to /healthz ready (median of ${RUNS})`, value: ms(median(ready)), baseline: `node -e "" ${ms(median(bare))}`, ratio: `+${ms(over)}`, target: '≤ +150 ms', ok: over <= 150 },
      { what: 'RSS idle (--max-old-space-size=48)', value: mib(mem.idle), target: '≤ 55 MB', ok: mem.idle <= 55 * 1048576 },
      { what: 'RSS after 10 000 /api/status (warm-up: JIT, heap)', value: mib(mem.warm), baseline: `idle ${mib(mem.idle)}`, ratio: delta(mem.warm, mem.idle), target: '≤ 64 MB (design)', ok: mem.warm <= 64 * 1048576 },
      { what: 'RSS after 10 000 more', value: mib(mem.after), baseline: `warm ${mib(mem.warm)}`, ratio: delta(mem.after, mem.warm), target: 'no growth (≤ +1 MiB)', ok: mem.after - mem.warm <= 1048576 }
    ]
  }
}
