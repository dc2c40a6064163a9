// canopy status: what the local agent says about itself.

import { AGENT_FLAG, agentBase, agentJson } from '../agent-client'
import { flagBool, flagString } from '../args'
import type { Command } from '../command'

const mb = (n: unknown): string => (typeof n === 'number' ? `${(n / 1048576).toFixed(1)} MB` : '?')

function duration (s: number): string {
  const d = Math.floor(s / 86400); const h = Math.floor(s / 3600) % 24; const m = Math.floor(s / 60) % 60
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s % 60}s`
}

const summarize = (v: unknown): string => {
  if (Array.isArray(v)) return `${v.length} item${v.length === 1 ? '' : 's'}`
  if (typeof v === 'object' && v !== null) {
    return Object.entries(v).filter(([, x]) => typeof x !== 'object' || x === null).slice(0, 8).map(([k, x]) => `${k} ${x}`).join(', ')
  }
  return String(v)
}

export const statusCommand: Command = {
  name: 'status',
  summary: "show the local agent's status",
  positionals: { min: 0, max: 0 },
  flags: [
    AGENT_FLAG,
    { name: 'json', help: 'print JSON' }
  ],
  async run (args, io) {
    const s = await agentJson(agentBase(flagString(args, 'agent')), '/api/status') as Record<string, unknown>
    if (flagBool(args, 'json')) {
      io.stdout.write(JSON.stringify(s, null, 2) + '\n')
      return 0
    }
    const mem = (s.memory ?? {}) as Record<string, unknown>
    const lines = [
      `Canopy ${s.version} · node ${s.nodeId}${s.name ? ` (${s.name})` : ''}`,
      `up ${duration(Number(s.uptimeSeconds ?? 0))} · memory ${mb(mem.rssBytes)} resident, ${mb(mem.heapUsedBytes)} heap`
    ]
    const nics = (s.interfaces ?? []) as Array<Record<string, unknown>>
    for (const n of nics) {
      if (n.role === 'loopback') continue
      lines.push(`interface ${n.name}: ${n.role}${n.up ? '' : ' (down)'} ${((n.addresses ?? []) as string[]).join(' ')}`)
    }
    const known = ['version', 'nodeId', 'name', 'uptimeSeconds', 'memory', 'interfaces', 'publicKey', 'startedAt']
    for (const [k, v] of Object.entries(s)) if (!known.includes(k)) lines.push(`${k}: ${summarize(v)}`)
    io.stdout.write(lines.join('\n') + '\n')
    return 0
  }
}
