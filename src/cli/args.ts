// Command-line flags: "--name value", "--name=value", booleans, repeatable
// flags, "--" to end flags. Anything unknown is a usage error (exit 2).

import { existsSync, readFileSync } from 'node:fs'
import { formatPublicKey, publicKeyFromText } from '../crypto'
import { CanopyError } from '../errors'
import { CLI_ARGS_COUNT_MAX } from '../limits'

export interface FlagSpec {
  name: string
  /** Placeholder for the value ("F", "HOST:PORT"); absent for a boolean flag. */
  value?: string
  repeatable?: boolean
  help: string
}

export interface ParsedArgs {
  flags: Record<string, string | string[] | true>
  positionals: string[]
}

const usage = (message: string): CanopyError => new CanopyError('USAGE', message)

export function parseArgs (argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  if (argv.length > CLI_ARGS_COUNT_MAX) throw usage(`over ${CLI_ARGS_COUNT_MAX} arguments`)
  const flags: ParsedArgs['flags'] = {}
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') { positionals.push(...argv.slice(i + 1)); break }
    if (!arg.startsWith('--') || arg === '-') {
      if (arg.startsWith('-') && arg !== '-') throw usage(`unknown flag ${arg}`)
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq === -1 ? undefined : eq)
    const spec = specs.find((s) => s.name === name)
    if (spec === undefined) throw usage(`unknown flag --${name}`)
    let value: string | true = true
    if (spec.value !== undefined) {
      if (eq !== -1) value = arg.slice(eq + 1)
      else if (i + 1 < argv.length) value = argv[++i]!
      else throw usage(`--${name} needs a value (${spec.value})`)
    } else if (eq !== -1) {
      throw usage(`--${name} takes no value`)
    }
    const prev = flags[name]
    if (prev !== undefined && !spec.repeatable) throw usage(`--${name} given twice`)
    if (spec.repeatable) flags[name] = [...(Array.isArray(prev) ? prev : []), value as string]
    else flags[name] = value
  }
  return { flags, positionals }
}

export const flagString = (args: ParsedArgs, name: string): string | undefined => {
  const v = args.flags[name]
  return typeof v === 'string' ? v : undefined
}

export const flagList = (args: ParsedArgs, name: string): string[] => {
  const v = args.flags[name]
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : []
}

export const flagBool = (args: ParsedArgs, name: string): boolean => args.flags[name] === true

export function formatFlags (specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => [`--${s.name}${s.value !== undefined ? ` ${s.value}` : ''}${s.repeatable ? ' (repeatable)' : ''}`, s.help])
  const width = Math.max(0, ...rows.map((r) => r[0]!.length))
  return rows.map(([a, b]) => `  ${a!.padEnd(width)}  ${b}`).join('\n')
}

/** `--trust KEY_OR_FILE`, repeatable: on `canopy agent` and `canopy fetch`, read by trustFlags. */
export const TRUST_FLAG = { name: 'trust', value: 'KEY_OR_FILE', repeatable: true, help: 'trust a publisher key (or key file)' }

/** --trust KEY_OR_FILE values as "ed25519:…" keys (a file holds a public key, or a PEM private key whose public half is meant). */
export const trustFlags = (args: ParsedArgs): string[] =>
  flagList(args, 'trust').map((t) => formatPublicKey(publicKeyFromText(existsSync(t) ? readFileSync(t, 'utf8') : t, t)))
