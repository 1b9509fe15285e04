// The errors a user reads: one line naming what to do, never a stack trace.

/** A problem with one input: reported as `<input>: <what is wrong and what to do>`, before any docker command runs. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    detail: string
  ) {
    super(`${input}: ${detail}`)
    this.name = 'InputError'
  }
}

/** A failure the user can act on (missing image, wrong platform, denied push): one line, no stack trace. */
export class ActionError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ActionError'
  }
}
