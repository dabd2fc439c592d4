// A session's clean-up: every step that made host state (an image or overlay mounted, a lock taken, a helper
// started, the session directory made) pushes the step that undoes it; they run once, newest first, whether the
// session failed half-way or ended.

export class Undo {
  private steps: (() => void)[] = [];

  push(step: () => void): void {
    this.steps.push(step);
  }

  /** Runs every step, even after one fails; the first failure is thrown once all have run. */
  run(): void {
    let first: unknown;
    let failed = false;
    for (const step of this.steps.splice(0).reverse()) {
      try {
        step();
      } catch (e) {
        if (!failed) first = e;
        failed = true;
      }
    }
    if (failed) throw first;
  }
}
