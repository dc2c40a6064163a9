// canopy group create|invite|join|records|watch: groups through the local
// agent's HTTP API (GET/POST /api/groups…, the events stream for watch).

import { request } from 'node:http'
import { CanopyError } from '../../errors'
import { agentBase, agentJson } from '../agent-client'
import { flagBool, flagString, type ParsedArgs } from '../args'
import type { CliIo, Command } from '../command'

const AGENT = { name: 'agent', value: 'URL', help: 'agent to use (default http://127.0.0.1:8787)' }
const JSON_FLAG = { name: 'json', help: 'print JSON' }
const call = (args: ParsedArgs, path: string, body?: unknown): Promise<Record<string, unknown>> =>
  agentJson(agentBase(flagString(args, 'agent')), path, body === undefined ? {} : { method: 'POST', body }) as Promise<Record<string, unknown>>
const print = (args: ParsedArgs, io: CliIo, v: unknown, line: string): number => {
  io.stdout.write((flagBool(args, 'json') ? JSON.stringify(v) : line) + '\n')
  return 0
}
const g = (s: string | undefined): string => encodeURIComponent(s ?? '')

/** "90s", "30m", "24h", "7d" (or plain ms). */
function durationMs (s: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(s)
  if (m === null) throw new CanopyError('USAGE', '--expires is a duration like 90s, 30m, 24h or 7d')
  return Number(m[1]) * { ms: 1, s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] ?? 'ms']!
}

const command = (name: string, args: string, summary: string, n: number, run: Command['run'], flags: Command['flags'] = []): Command =>
  ({ name: `group ${name}`, args, summary, positionals: { min: n, max: n }, flags: [AGENT, JSON_FLAG, ...flags], run })

export const groupCommands: Command[] = [
  command('create', 'NAME', 'create a group (this node owns it) and print its id', 1, async (args, io) => {
    const r = await call(args, '/api/groups', { name: args.positionals[0] })
    return print(args, io, r, String(r.id))
  }),
  command('invite', '', 'print an invitation for a node to pass on out of band', 0, async (args, io) => {
    const group = flagString(args, 'group')
    const who = flagString(args, 'for')
    if (group === undefined || who === undefined) throw new CanopyError('USAGE', 'group invite needs --group G and --for NODE_ID_OR_KEY')
    const r = await call(args, `/api/groups/${g(group)}/invitations`, { for: who, roles: flagString(args, 'roles') ?? 'member', expiresMs: durationMs(flagString(args, 'expires') ?? '24h') })
    return print(args, io, r, String(r.invitation))
  }, [
    { name: 'group', value: 'G', help: 'the group id' },
    { name: 'for', value: 'ID_OR_KEY', help: "the invited node's id or public key" },
    { name: 'roles', value: 'R[,R]', help: 'member (default), admin, reader' },
    { name: 'expires', value: 'DURATION', help: 'how long the invitation is valid (default 24h)' }
  ]),
  command('join', 'INVITATION', 'join a group with an invitation', 1, async (args, io) => {
    const r = await call(args, '/api/groups/join', { invitation: args.positionals[0] })
    return print(args, io, r, `joined ${String(r.id)}`)
  }),
  command('records', 'G', "list a group's records (--type T to filter)", 1, async (args, io) => {
    const t = flagString(args, 'type')
    const r = await call(args, `/api/groups/${g(args.positionals[0])}/records${t === undefined ? '' : `?type=${g(t)}`}`)
    const list = r.records as Array<Record<string, unknown>>
    return print(args, io, r, list.map((x) => `${String(x.id)} ${String(x.type)} v${String(x.version)} by ${String(x.author).slice(0, 8)} ${String(x.payload ?? '').slice(0, 60)}`).join('\n'))
  }, [{ name: 'type', value: 'T', help: 'only records of this type' }]),
  command('watch', 'G', "print a group's events as they happen (until interrupted)", 1, (args, io) => new Promise((resolve, reject) => {
    const url = new URL(`/api/groups/${g(args.positionals[0])}/events`, agentBase(flagString(args, 'agent')))
    const req = request(url, (res) => {
      if (res.statusCode !== 200) { reject(new CanopyError('HTTP_NOT_FOUND', `the agent answered ${res.statusCode ?? 0}: no such group?`)); res.resume(); return }
      let buf = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        buf += c
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i)
          buf = buf.slice(i + 2)
          const ev = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (ev !== undefined && data !== undefined) io.stdout.write(flagBool(args, 'json') ? `{"event":${JSON.stringify(ev)},"data":${data}}\n` : `${ev} ${data}\n`)
        }
      })
      res.on('end', () => { resolve(0) })
    })
    req.on('error', (err) => { reject(new CanopyError('AGENT_UNREACHABLE', `cannot reach the agent at ${url.origin} (${err.message})`)) })
    req.end()
  }))
]
