// The built bundle, copied alone into an empty folder, started as a child
// process the way a device would start it.

import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { bundle } from '../../build/bundle'
import { tempDir } from './tmp'

let built: Promise<string> | null = null

/** Build once per test process. */
export function builtBundle (): Promise<string> {
  built ??= bundle({ quiet: true }).then((b) => b.path)
  return built
}

export const NODE_FLAGS = ['--max-old-space-size=48', '--max-semi-space-size=1']
/**
 * The environment the firmware's init files set (firmware/): glibc keeps
 * freed 1 MiB piece buffers in its arenas unless told to return them.
 */
export const FIRMWARE_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' }

export interface RunningBundle {
  child: ChildProcess
  dir: string
  stdout: () => string
  stderr: () => string
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  cleanup (): void
}

/** Copy the bundle into an empty folder (no node_modules anywhere near) and run it. */
export async function runBundle (args: string[], options: { cwd?: string, env?: NodeJS.ProcessEnv, files?: Record<string, string> } = {}): Promise<RunningBundle> {
  const src = await builtBundle()
  const dir = tempDir('canopy-bundle-')
  copyFileSync(src, join(dir.path, 'canopy.js'))
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(dir.path, name), text)
  const child = spawn(process.execPath, [...NODE_FLAGS, join(dir.path, 'canopy.js'), ...args], {
    cwd: options.cwd ?? dir.path,
    env: { PATH: process.env.PATH, ...FIRMWARE_ENV, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (c: Buffer) => { out += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { err += c.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  return {
    child,
    dir: dir.path,
    stdout: () => out,
    stderr: () => err,
    exited,
    cleanup: () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); dir.remove() }
  }
}

/** Wait for the agent's "status page http://…" line and return its base URL. */
export async function agentUrl (run: RunningBundle, deadlineMs = 10_000): Promise<string> {
  const end = Date.now() + deadlineMs
  while (Date.now() < end) {
    const m = /status page (http:\/\/\S+?)\/? /.exec(run.stderr())
    if (m !== null) return m[1]!
    if (run.child.exitCode !== null) throw new Error(`agent exited ${run.child.exitCode}: ${run.stderr()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`agent did not report its URL within ${deadlineMs} ms: ${run.stderr()}`)
}
