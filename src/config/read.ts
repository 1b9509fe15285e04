import { parseDuration } from '../model/duration.js'
import { InputError } from '../model/errors.js'
import type { GitHubContext } from '../model/github.js'

/** Reads one input by its action.yml name; returns '' when unset. */
export type InputReader = (name: string) => string

export interface InputEnvironment {
  github: GitHubContext
  /** does this local path exist (relative to the workspace)? */
  exists: (path: string) => boolean
}

export function oneOf<T extends string>(read: InputReader, name: string, allowed: readonly T[]): T {
  const value = read(name)
  if (!(allowed as readonly string[]).includes(value)) {
    throw new InputError(name, `'${value}' is not one of ${allowed.join(', ')}`)
  }
  return value as T
}

export function bool(read: InputReader, name: string): boolean {
  const value = read(name).toLowerCase()
  if (value === 'true') return true
  if (value === 'false' || value === '') return false
  throw new InputError(name, `'${read(name)}' is not true or false`)
}

/** Splits a newline list (build-args, labels): blank lines and surrounding spaces are dropped. */
export function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
}

/** Splits a newline-or-comma list (platforms, tags). */
export function items(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((l) => l.trim())
    .filter((l) => l !== '')
}

export function duration(read: InputReader, name: string, minMs: number, maxMs: number): number {
  const text = read(name)
  const ms = parseDuration(text)
  if (ms === undefined) throw new InputError(name, `'${text}' is not a duration; write e.g. 500ms, 2s or 10m`)
  if (ms < minMs || ms > maxMs) throw new InputError(name, `'${text}' is out of range (${minMs} ms to ${maxMs / 1000} s)`)
  return ms
}
