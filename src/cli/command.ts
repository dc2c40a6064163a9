// A CLI command: its name (one or two words), flags, and what it runs.

import type { FlagSpec, ParsedArgs } from './args'

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean }
  stderr: NodeJS.WritableStream & { isTTY?: boolean }
  stdin: NodeJS.ReadableStream
  env: NodeJS.ProcessEnv
}

export interface Command {
  /** "agent", "stream push", ... */
  name: string
  /** Positional arguments for usage ("FILE", "NAME"). */
  args?: string
  summary: string
  flags: FlagSpec[]
  positionals: { min: number, max: number }
  /** Resolves with the exit status. */
  run (args: ParsedArgs, io: CliIo): Promise<number>
}

export const HELP_FLAG: FlagSpec = { name: 'help', help: 'show this help' }
