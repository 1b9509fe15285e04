// One file, two generators: `npm run bench` writes docs/benchmarks.md as a whole and
// `npm run bench:pipeline` owns one marked block inside it. Each keeps the other's part:
// bench.mjs carries the block over when it regenerates the file, pipeline.mjs replaces only
// the block (or appends it when the file has none yet). A second marked block holds findings
// written by hand (an investigation's timeline, say); both generators keep it as it is.

import * as fs from 'node:fs'

export const PIPELINE_BEGIN = '<!-- bench:pipeline:begin (written by `npm run bench:pipeline`; `npm run bench` keeps it) -->'
export const PIPELINE_END = '<!-- bench:pipeline:end -->'
export const FINDINGS_BEGIN = '<!-- findings:begin (written by hand; both generators keep it) -->'
export const FINDINGS_END = '<!-- findings:end -->'

function block(text, begin, end) {
  const b = text.indexOf(begin)
  const e = text.indexOf(end)
  return b < 0 || e < b ? '' : text.slice(b, e + end.length)
}

/** The marked pipeline block of a text (markers included), or '' when there is none. */
export function extractPipelineBlock(text) {
  return block(text, PIPELINE_BEGIN, PIPELINE_END)
}

/** `text` with its pipeline block replaced by `block` (appended at the end when absent). */
export function withPipelineBlock(text, block) {
  const b = text.indexOf(PIPELINE_BEGIN)
  const e = text.indexOf(PIPELINE_END)
  if (b >= 0 && e > b) return text.slice(0, b) + block + text.slice(e + PIPELINE_END.length)
  const base = text.replace(/\s*$/, '')
  return `${base}${base ? '\n\n' : ''}${block}\n`
}

/** For bench.mjs: the freshly generated markdown plus the findings and pipeline blocks the old file held. */
export function keepPipelineBlock(file, freshMarkdown) {
  let old = ''
  try {
    old = fs.readFileSync(file, 'utf8')
  } catch {}
  const pipeline = extractPipelineBlock(old)
  const findings = block(old, FINDINGS_BEGIN, FINDINGS_END)
  const kept = [findings, pipeline].filter(Boolean).join('\n\n')
  return kept ? withPipelineBlock(freshMarkdown, kept) : freshMarkdown
}

/** For pipeline.mjs: writes `block` (markers included) into `file`, keeping everything else. */
export function writePipelineBlock(file, body) {
  let old = ''
  try {
    old = fs.readFileSync(file, 'utf8')
  } catch {}
  const block = `${PIPELINE_BEGIN}\n${body.replace(/\s*$/, '')}\n${PIPELINE_END}`
  fs.writeFileSync(file, withPipelineBlock(old, block))
}
