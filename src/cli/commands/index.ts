// Every CLI command, in the order --help lists them.

import type { Command } from '../command'
import { agentCommand } from './agent'
import { keygenCommand } from './keygen'
import { statusCommand } from './status'

export const COMMANDS: readonly Command[] = [
  agentCommand,
  keygenCommand,
  statusCommand
]
