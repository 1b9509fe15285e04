import * as core from '@actions/core'
import { formatDuration } from '../model/duration.js'

/** One job-summary table per run: a row per fact, so build and manifest runs read alike. */
export async function writeSummary(title: string, rows: Array<[string, string]>, startedAt: number): Promise<void> {
  // outside a runner (a plain `node dist/index.js`) there is no summary file: nothing to write
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const all: Array<[string, string]> = [...rows, ['duration', formatDuration(Date.now() - startedAt)]]
  await core.summary
    .addHeading(title, 3)
    .addTable([
      [
        { data: 'what', header: true },
        { data: 'value', header: true }
      ],
      ...all.map(([k, v]) => [k, v ? `<code>${escapeHtml(v)}</code>` : '-'])
    ])
    .write()
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
