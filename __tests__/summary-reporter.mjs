// Ends every jest run with one plain line, `tests: N passed, N failed, N skipped`,
// which CI reads to know how many tests really ran. Printed at exit so it is the last line.
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests, numFailedTests, numPendingTests, numTodoTests } = results
    const line = `tests: ${numPassedTests} passed, ${numFailedTests} failed, ${numPendingTests + numTodoTests} skipped\n`
    process.once('exit', () => process.stdout.write(line))
  }
}
