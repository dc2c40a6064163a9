// canopy …: dispatch, help, version, and exit statuses (usage and config
// errors 2, other failures 1 with a message that says what to do).

import { CanopyError } from '../errors'
import { VERSION } from '../version'
import { formatFlags, parseArgs } from './args'
import { HELP_FLAG, type CliIo, type Command } from './command'
import { COMMANDS } from './commands'

const synopsis = (c: Command): string => c.args === undefined ? c.name : `${c.name} ${c.args}`

function overview (): string {
  const width = Math.max(...COMMANDS.map((c) => synopsis(c).length))
  const rows = COMMANDS.map((c) => `  canopy ${synopsis(c).padEnd(width)}  ${c.summary}`)
  return `Canopy ${VERSION}: downloads and streams shared by a home's devices.\n\nUsage:\n${rows.join('\n')}\n\n` +
    'Every command takes --help.\n'
}

export function commandHelp (c: Command): string {
  return `Usage: canopy ${synopsis(c)} [flags]\n\n${c.summary}\n\nFlags:\n${formatFlags([...c.flags, HELP_FLAG])}\n`
}

/** The command named by the first one or two words of argv. */
function find (argv: readonly string[]): { command: Command, rest: string[] } | null {
  for (const words of [2, 1]) {
    const name = argv.slice(0, words).join(' ')
    const command = COMMANDS.find((c) => c.name === name)
    if (command !== undefined) return { command, rest: argv.slice(words) }
  }
  return null
}

export async function main (argv: readonly string[], io: CliIo): Promise<number> {
  if (argv.length === 0 || ['--help', 'help', '-h'].includes(argv[0]!)) {
    (argv.length === 0 ? io.stderr : io.stdout).write(overview())
    return argv.length === 0 ? 2 : 0
  }
  if (argv[0] === '--version') {
    io.stdout.write(`${VERSION}\n`)
    return 0
  }
  const found = find(argv)
  if (found === null) {
    const group = COMMANDS.filter((c) => c.name.startsWith(`${argv[0]!} `))
    io.stderr.write(`canopy: unknown command "${argv.slice(0, group.length > 0 ? 2 : 1).join(' ')}"\n\n${overview()}`)
    return 2
  }
  const { command, rest } = found
  if (rest.some((a) => a === '--help' || a === '-h')) {
    io.stdout.write(commandHelp(command))
    return 0
  }
  try {
    const args = parseArgs(rest, command.flags)
    const n = args.positionals.length
    if (n < command.positionals.min || n > command.positionals.max) {
      throw new CanopyError('USAGE', n < command.positionals.min ? `missing ${command.args ?? 'argument'}` : `unexpected argument ${args.positionals[command.positionals.max] ?? ''}`)
    }
    return await command.run(args, io)
  } catch (err) {
    // Usage: the message and the command's help, exit 2. Config: one line, exit 2. Anything else: exit 1.
    const usage = CanopyError.is(err, 'USAGE')
    const config = CanopyError.is(err) && err.code.startsWith('CONFIG_')
    const message = CanopyError.is(err) ? err.message : `internal error: ${(err as Error)?.stack ?? err}`
    io.stderr.write(`canopy${config ? '' : ` ${command.name}`}: ${message}\n${usage ? `\n${commandHelp(command)}` : ''}`)
    return usage || config ? 2 : 1
  }
}
