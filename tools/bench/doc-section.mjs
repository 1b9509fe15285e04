// One file, two generators: `npm run bench` writes docs/benchmarks.md as a whole and
// `npm run bench:pipeline` owns one marked block inside it. Each keeps the other's part:
// bench.mjs carries the block over when it regenerates the file, pipeline.mjs replaces only
// the block (or appends it when the file has none yet).

import * as fs from 'node:fs'

export const PIPELINE_BEGIN = '<!-- bench:pipeline:begin (written by `npm run bench:pipeline`; `npm run bench` keeps it) -->'
export const PIPELINE_END = '<!-- bench:pipeline:end -->'

/** The marked pipeline block of a text (markers included), or '' when there is none. */
export function extractPipelineBlock(text) {
  const b = text.indexOf(PIPELINE_BEGIN)
  const e = text.indexOf(PIPELINE_END)
  if (b < 0 || e < b) return ''
  return text.slice(b, e + PIPELINE_END.length)
}

/** `text` with its pipeline block replaced by `block` (appended at the end when absent). */
export function withPipelineBlock(text, block) {
  const b = text.indexOf(PIPELINE_BEGIN)
  const e = text.indexOf(PIPELINE_END)
  if (b >= 0 && e > b) return text.slice(0, b) + block + text.slice(e + PIPELINE_END.length)
  const base = text.replace(/\s*$/, '')
  return `${base}${base ? '\n\n' : ''}${block}\n`
}

/** For bench.mjs: the freshly generated markdown plus the pipeline block the old file held. */
export function keepPipelineBlock(file, freshMarkdown) {
  let old = ''
  try {
    old = fs.readFileSync(file, 'utf8')
  } catch {}
  const block = extractPipelineBlock(old)
  return block ? withPipelineBlock(freshMarkdown, block) : freshMarkdown
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
