// The scanner hook's device side: run an external command (e.g. a virus
// scanner) on a completed file. The file is written to a private temporary
// path in the data directory, the command gets that path as its last
// argument, and exit status 0 means clean; anything else (a non-zero exit, a
// signal, no exit within the deadline, a command that cannot start) vetoes.

import { spawn } from 'node:child_process'
import { createWriteStream, promises as fsp } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { SCAN_OUTPUT_BYTES_MAX, SCAN_TIMEOUT_MS } from '../limits'

export interface ScanResult { clean: boolean, detail: string }

export interface Scanner {
  scan (name: string, body: AsyncIterable<Uint8Array>): Promise<ScanResult>
}

export function commandScanner (argv: readonly string[], dir: string, timeoutMs = SCAN_TIMEOUT_MS): Scanner {
  let seq = 0
  return {
    async scan (name, body) {
      const path = join(dir, `.scan-${process.pid}-${seq++}-${name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)}`)
      try {
        await pipeline(body, createWriteStream(path, { mode: 0o600 }))
        return await new Promise<ScanResult>((resolve) => {
          let out = ''
          // Its own process group, so that a hung scanner is killed with its children.
          const child = spawn(argv[0]!, [...argv.slice(1), path], { stdio: ['ignore', 'pipe', 'pipe'], detached: true })
          const keep = (c: Buffer): void => { if (out.length < SCAN_OUTPUT_BYTES_MAX) out += c.toString('utf8').slice(0, SCAN_OUTPUT_BYTES_MAX - out.length) }
          child.stdout.on('data', keep)
          child.stderr.on('data', keep)
          const timer = setTimeout(() => {
            try { process.kill(-child.pid!, 'SIGKILL') } catch { child.kill('SIGKILL') }
            out += ` (killed after ${timeoutMs} ms)`
          }, timeoutMs)
          const done = (r: ScanResult): void => { clearTimeout(timer); resolve(r) }
          child.on('error', (e) => { done({ clean: false, detail: `scanner could not run: ${e.message}` }) })
          child.on('close', (code, signal) => {
            done({ clean: code === 0, detail: `${argv[0]!} exited ${code ?? signal ?? '?'}${out.trim() === '' ? '' : `: ${out.trim()}`}` })
          })
        })
      } finally {
        await fsp.rm(path, { force: true }).catch(() => {})
      }
    }
  }
}
