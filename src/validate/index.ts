// A small typed schema kit for untrusted JSON-like input (config files, API
// bodies): each spec parses and checks one value, fills its default, and on
// failure throws one CanopyError naming the field, what it got and what it
// expected.

import { CanopyError, type ErrorCode } from '../errors'

export interface Spec<T> {
  /** What a valid value looks like, for error messages and docs. */
  readonly expected: string
  /** undefined when the field is required. */
  readonly fallback: (() => T) | undefined
  check (value: unknown, ctx: Ctx): T
}

export interface Ctx {
  path: string
  code: ErrorCode
  what: string
}

export type Infer<S> = S extends Spec<infer T> ? T : never

const describe = (v: unknown): string => {
  if (v === undefined) return 'nothing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return `an array of ${v.length}`
  if (typeof v === 'object') return 'an object'
  const text = JSON.stringify(v)
  return `${typeof v} ${text.length > 60 ? `${text.slice(0, 57)}...` : text}`
}

export function fail (ctx: Ctx, got: unknown, expected: string): never {
  const field = ctx.path === '' ? '(top level)' : ctx.path
  throw new CanopyError(ctx.code, `${ctx.what} field "${field}": got ${describe(got)}, expected ${expected}`,
    { detail: { field, expected } })
}

const at = (ctx: Ctx, key: string | number): Ctx =>
  ({ ...ctx, path: typeof key === 'number' ? `${ctx.path}[${key}]` : ctx.path === '' ? key : `${ctx.path}.${key}` })

/** A plain object: not null, not an array. */
export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function spec<T> (expected: string, fallback: (() => T) | undefined, check: (v: unknown, ctx: Ctx) => T): Spec<T> {
  return { expected, fallback, check }
}

/** A spec whose value is the input itself, when `ok` accepts it; `def` is the default (none: required). */
function plain<T> (expected: string, ok: (v: any) => boolean, def?: T): Spec<T> {
  return spec(expected, def === undefined ? undefined : () => def, (v, ctx) => {
    if (!ok(v)) fail(ctx, v, expected)
    return v as T
  })
}

export function int (min: number, max: number, def?: number): Spec<number> {
  return plain(`an integer from ${min} to ${max}`, (v) => Number.isInteger(v) && v >= min && v <= max, def)
}

export function bool (def?: boolean): Spec<boolean> {
  return plain('true or false', (v) => typeof v === 'boolean', def)
}

export function str (options: { min?: number, max: number, pattern?: RegExp, hint?: string, def?: string }): Spec<string> {
  const { min = 0, max, pattern } = options
  return plain(options.hint ?? `a string of ${min} to ${max} characters`,
    (v) => typeof v === 'string' && v.length >= min && v.length <= max && (pattern?.test(v) ?? true), options.def)
}

export function oneOf<const T extends readonly string[]> (values: T, def?: T[number]): Spec<T[number]> {
  return plain(`one of ${values.map((x) => JSON.stringify(x)).join(', ')}`, (v) => values.includes(v), def)
}

export function arrayOf<T> (item: Spec<T>, options: { max: number, def?: T[] }): Spec<T[]> {
  const expected = `a list of at most ${options.max} items, each ${item.expected}`
  return spec(expected, options.def === undefined ? undefined : () => [...options.def!], (v, ctx) => {
    if (!Array.isArray(v) || v.length > options.max) fail(ctx, v, expected)
    return v.map((x, i) => item.check(x, at(ctx, i)))
  })
}

export function optional<T> (inner: Spec<T>): Spec<T | null> {
  return spec(`${inner.expected}, or null`, () => null, (v, ctx) => (v === null ? null : inner.check(v, ctx)))
}

/** Transform a checked value (e.g. parse "24h" into milliseconds). */
export function map<A, B> (inner: Spec<A>, expected: string, fn: (a: A) => B | undefined, def?: B): Spec<B> {
  return spec(expected, def === undefined ? undefined : () => def, (v, ctx) => {
    const out = fn(inner.check(v, ctx))
    if (out === undefined) fail(ctx, v, expected)
    return out
  })
}

type Shape = Record<string, Spec<unknown>>
type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> }

/**
 * An object with exactly these fields: unknown fields are errors (a typo in a
 * config must not be silently ignored), unless open (a wire body from a newer
 * peer may carry more). It has a default when every field does.
 */
export function obj<S extends Shape> (shape: S, open = false): Spec<ObjectOf<S>> {
  const keys = Object.keys(shape)
  const expected = `an object with fields ${keys.join(', ')}`
  const check = (v: unknown, ctx: Ctx): ObjectOf<S> => {
    if (!isRecord(v)) fail(ctx, v, expected)
    const input = v as Record<string, unknown>
    for (const k of open ? [] : Object.keys(input)) {
      if (!Object.hasOwn(shape, k)) fail(at(ctx, k), input[k], `no such field (known: ${keys})`)
    }
    const out: Record<string, unknown> = {}
    for (const k of keys) {
      const s = shape[k]!
      const value = input[k]
      if (value === undefined) {
        if (s.fallback === undefined) fail(at(ctx, k), undefined, s.expected)
        out[k] = s.fallback()
      } else {
        out[k] = s.check(value, at(ctx, k))
      }
    }
    return out as ObjectOf<S>
  }
  const complete = keys.every((k) => shape[k]!.fallback !== undefined)
  return spec(expected, complete ? () => check({}, { path: '', code: 'ASSERTION', what: 'default' }) : undefined, check)
}

/** Check a whole document; errors use `code` and say "<what> field ...". */
export function validate<T> (s: Spec<T>, value: unknown, code: ErrorCode, what: string): T {
  return s.check(value, { path: '', code, what })
}
