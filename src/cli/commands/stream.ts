// canopy stream push NAME / canopy stream play NAME: a live MPEG-TS stream
// from stdin into the local agent (which becomes its source), and a stream
// from the local agent to stdout.

import { CanopyError } from '../../errors'
import { STREAM_NAME_PATTERN } from '../../stream/meta'
import { AGENT_FLAG, agentBase, pullFromAgent, pushToAgent } from '../agent-client'
import { flagString } from '../args'
import type { Command } from '../command'

const checkName = (name: string | undefined): string => {
  if (name === undefined || !STREAM_NAME_PATTERN.test(name)) throw new CanopyError('USAGE', 'NAME is 1-64 of A-Z a-z 0-9 . _ -')
  return name
}

const streamPath = (name: string): string => `/stream/${encodeURIComponent(name)}`

export const streamPushCommand: Command = {
  name: 'stream push',
  args: 'NAME',
  summary: 'push live MPEG-TS from stdin to the agent',
  positionals: { min: 1, max: 1 },
  flags: [
    AGENT_FLAG,
    { name: 'token', value: 'T', help: 'push token (or CANOPY_PUSH_TOKEN)' }
  ],
  async run (args, io) {
    const name = checkName(args.positionals[0])
    const token = flagString(args, 'token') ?? io.env.CANOPY_PUSH_TOKEN
    if (token === undefined || token === '') throw new CanopyError('USAGE', 'stream push needs --token T')
    const result = await pushToAgent(agentBase(flagString(args, 'agent')), streamPath(name), io.stdin, { authorization: `Bearer ${token}` }) as Record<string, unknown> | null
    io.stderr.write(`canopy: stream ${name} ended: ${result?.bytes ?? '?'} bytes, ${result?.chunks ?? '?'} chunks\n`)
    return 0
  }
}

export const streamPlayCommand: Command = {
  name: 'stream play',
  args: 'NAME',
  summary: 'write a live stream to stdout as MPEG-TS',
  positionals: { min: 1, max: 1 },
  flags: [
    AGENT_FLAG
  ],
  async run (args, io) {
    const name = checkName(args.positionals[0])
    await pullFromAgent(agentBase(flagString(args, 'agent')), streamPath(name), io.stdout)
    return 0
  }
}
