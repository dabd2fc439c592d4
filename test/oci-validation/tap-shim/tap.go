// Package tap stands in for github.com/mndrix/tap-go, which Debian 12 does not package. It writes TAP
// version 13 (https://testanything.org/tap-version-13-specification.html) and offers only the calls the
// runtime-tools validation programs and runtimetest make.
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T is one TAP stream. Copies made by Todo share the test counter, so numbering stays continuous.
type T struct {
	next   *int
	TODO   bool
	Writer io.Writer
}

func New() *T {
	first := 1
	return &T{next: &first}
}

func (t *T) printf(format string, args ...interface{}) {
	w := t.Writer
	if w == nil {
		w = os.Stdout
	}
	fmt.Fprintf(w, format, args...)
}

// Header starts the stream; a zero count means the plan comes at the end (AutoPlan).
func (t *T) Header(count int) {
	t.printf("TAP version 13\n")
	if count > 0 {
		t.printf("1..%d\n", count)
	}
}

func (t *T) Ok(test bool, description string) {
	result := "ok"
	if !test {
		result = "not ok"
	}
	if t.TODO {
		t.printf("%s %d # TODO %s\n", result, *t.next, description)
	} else {
		t.printf("%s %d - %s\n", result, *t.next, description)
	}
	*t.next++
}

func (t *T) Pass(description string) { t.Ok(true, description) }

func (t *T) Fail(description string) { t.Ok(false, description) }

func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.next, description)
		*t.next++
	}
}

// Todo returns a view of the stream whose points are marked TODO.
func (t *T) Todo() *T {
	todo := *t
	todo.TODO = true
	return &todo
}

func (t *T) Count() int { return *t.next - 1 }

func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

// A diagnostic may span lines; each gets its own "# " so no line can be read as a test point.
func (t *T) Diagnostic(message string) {
	t.printf("# %s\n", strings.Replace(strings.TrimRight(message, "\n"), "\n", "\n# ", -1))
}

func (t *T) Diagnosticf(format string, args ...interface{}) {
	t.Diagnostic(fmt.Sprintf(format, args...))
}

// YAML writes a diagnostic block. JSON is valid YAML, and encoding/json is in the standard library.
func (t *T) YAML(message interface{}) error {
	text, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", text)
	return nil
}
