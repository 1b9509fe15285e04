const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** Parses `500ms`, `1s`, `2m`, `1m30s` or a bare number of seconds into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const t = text.trim()
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000)
  if (!/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(t)) return undefined
  let total = 0
  for (const [, value, , unit] of t.matchAll(/(\d+(\.\d+)?)(ms|s|m|h)/g)) total += Number(value) * UNITS[unit]
  return Math.round(total)
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}
