import * as core from '@actions/core'
import { writeSummary } from './summary.js'

/** What a mode hands back to the entry point: the step outputs and one job-summary table. */
export interface RunResult {
  outputs: Record<string, string>
  summary: { title: string; rows: Array<[string, string]> }
}

/** Sets every output and writes the summary: the only place either happens. */
export async function reportResult(result: RunResult, startedAt: number): Promise<void> {
  for (const [name, value] of Object.entries(result.outputs)) core.setOutput(name, value)
  await writeSummary(result.summary.title, result.summary.rows, startedAt)
}
