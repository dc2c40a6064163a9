// A throwaway LAN of Linux network namespaces: one "switch" namespace holding
// a bridge, and hosts joined to it by veth pairs. Everything is created
// inside namespaces with names unique to this run (nothing in the root
// namespace), and removed by cleanup(), which tests call in `finally`.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export interface LabHost {
  ns: string
  /** The host's interface on the bridge. */
  ifname: string
  address: string
}

export interface NetnsLab {
  id: string
  hosts: LabHost[]
  /** Run a command inside a host's namespace and return its stdout (deadline in ms). */
  exec (host: LabHost, cmd: string, args: string[], timeoutMs?: number): Promise<string>
  /** Start a long-running process inside a host's namespace. */
  spawn (host: LabHost, cmd: string, args: string[], options?: { cwd?: string, env?: NodeJS.ProcessEnv }): ChildProcess
  cleanup (): void
}

const ip = (args: string[]): void => { execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }) }

/** Can this process make namespaces (root, iproute2)? */
export function netnsAvailable (): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root'
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' })
  } catch {
    return 'needs iproute2 (ip)'
  }
  return null
}

/** A bridge and `count` hosts at 10.X.0.1, 10.X.0.2, ... /24, each with lo up and a multicast route. */
export function createNetnsLab (count: number): NetnsLab {
  // Interface names are per namespace, so only namespace names must be unique on the machine.
  const id = `cs${process.pid % 10000}${randomBytes(2).toString('hex')}`
  const subnet = 64 + randomBytes(1)[0]! % 128
  const sw = `${id}-sw`
  const created: string[] = []
  const hosts: LabHost[] = []
  const procs: ChildProcess[] = []
  const cleanup = (): void => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    for (const ns of created.reverse()) {
      try { ip(['netns', 'del', ns]) } catch { /* already gone */ }
    }
    created.length = 0
  }
  try {
    ip(['netns', 'add', sw]); created.push(sw)
    ip(['-n', sw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0'])
    ip(['-n', sw, 'link', 'set', 'br0', 'up'])
    for (let i = 0; i < count; i++) {
      const ns = `${id}-h${i}`
      ip(['netns', 'add', ns]); created.push(ns)
      ip(['-n', sw, 'link', 'add', `p${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      ip(['-n', sw, 'link', 'set', `p${i}`, 'master', 'br0', 'up'])
      const address = `10.${subnet}.0.${i + 1}`
      ip(['-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'eth0'])
      ip(['-n', ns, 'link', 'set', 'eth0', 'up'])
      ip(['-n', ns, 'link', 'set', 'lo', 'up'])
      ip(['-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'])
      hosts.push({ ns, ifname: 'eth0', address })
    }
  } catch (err) {
    cleanup()
    throw err
  }
  return {
    id,
    hosts,
    exec: (host, cmd, args, timeoutMs = 10_000) => new Promise((resolve, reject) => {
      execFile('ip', ['netns', 'exec', host.ns, cmd, ...args], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err !== null) reject(new Error(`${cmd} ${args.join(' ')} in ${host.ns}: ${err.message} ${stderr}`))
        else resolve(stdout)
      })
    }),
    spawn (host, cmd, args, options = {}) {
      const p = spawn('ip', ['netns', 'exec', host.ns, cmd, ...args], { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
      procs.push(p)
      return p
    },
    cleanup
  }
}
