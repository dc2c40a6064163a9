// Config from a JSON file (optional), CLI overrides on top, then one
// validation pass so that a bad value names its field wherever it came from.

import { CanopyError } from '../errors'
import type { Files } from '../hal'
import { CONFIG_FILE_BYTES_MAX } from '../limits'
import { isRecord, validate } from '../validate'
import { configSpec, type Config } from './schema'

export type ConfigOverrides = Record<string, unknown>

/** Deep merge of plain objects; arrays and scalars in `top` replace. */
export function mergeConfig (base: unknown, top: unknown): unknown {
  if (!isRecord(base) || !isRecord(top)) return top === undefined ? base : top
  const out: Record<string, unknown> = { ...base }
  for (const [k, v] of Object.entries(top)) out[k] = mergeConfig(base[k], v)
  return out
}

export function parseConfigText (text: string, source: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new CanopyError('CONFIG_UNREADABLE', `${source} is not valid JSON: ${(err as Error).message}`)
  }
}

export function checkConfig (raw: unknown): Config {
  return validate(configSpec, raw, 'CONFIG_INVALID', 'config')
}

export async function loadConfig (files: Files, path: string | null, overrides: ConfigOverrides = {}): Promise<Config> {
  let raw: unknown = {}
  if (path !== null) {
    let data: Buffer | null
    try {
      data = await files.read(path, CONFIG_FILE_BYTES_MAX)
    } catch (err) {
      throw CanopyError.from(err, 'CONFIG_UNREADABLE', `cannot read config ${path}`)
    }
    if (data === null) throw new CanopyError('CONFIG_UNREADABLE', `${path} does not exist`)
    raw = parseConfigText(data.toString('utf8'), path)
  }
  // A file whose top level is not an object must fail as itself, not vanish in the merge.
  if (!isRecord(raw)) return checkConfig(raw)
  return checkConfig(mergeConfig(raw, overrides))
}

/** The defaults, as a document (for --print-config and the firmware's default file). */
export function defaultConfig (): Config {
  return checkConfig({})
}
