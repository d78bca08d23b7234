package topology

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Sentinel errors.
var (
	// ErrInvalid marks every error found while loading or validating a
	// topology; use errors.As with *Error for the position and field.
	ErrInvalid = errors.New("invalid topology")
)

// Error is one problem in a topology file: where it is and what is wrong.
// Line and Column are 1-based and zero when unknown (a topology built in Go).
type Error struct {
	File   string // file name as given to the loader ("<default>" for the embedded topology)
	Line   int
	Column int
	Field  string // YAML path of the offending field, e.g. "hsm.keys[1].size"
	Msg    string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every *Error match ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// Errors is a list of problems, in file order. It is returned as one error.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap exposes the individual errors to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// nodeError is returned by custom unmarshalers so the loader can report the
// node's position and path.
func nodeError(node ast.Node, msg string) error {
	e := &Error{Field: cleanPath(node.GetPath()), Msg: msg}
	if tk := node.GetToken(); tk != nil && tk.Position != nil {
		e.Line, e.Column = tk.Position.Line, tk.Position.Column
	}
	return e
}

// cleanPath turns goccy's "$.a.b[0]" into "a.b[0]".
func cleanPath(p string) string {
	p = strings.TrimPrefix(p, "$")
	return strings.TrimPrefix(p, ".")
}
