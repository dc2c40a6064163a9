// Every CLI command, in the order --help lists them.

import type { Command } from '../command'
import { agentCommand } from './agent'
import { groupCommands } from './group'
import { fetchCommand } from './fetch'
import { keygenCommand } from './keygen'
import { publishCommand } from './publish'
import { statusCommand } from './status'
import { streamPlayCommand, streamPushCommand } from './stream'

export const COMMANDS: readonly Command[] = [
  agentCommand,
  keygenCommand,
  publishCommand,
  fetchCommand,
  statusCommand,
  streamPushCommand,
  streamPlayCommand,
  ...groupCommands
]
