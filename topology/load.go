package topology

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

//go:embed contoso.yaml
var defaultYAML []byte

// DefaultFile is the name under which errors and results refer to the
// embedded default topology.
const DefaultFile = "topology/contoso.yaml"

// MaxFileSize bounds the size of a topology file the loader accepts.
const MaxFileSize = 4 << 20

// DefaultSource returns the YAML text of the embedded default topology.
func DefaultSource() []byte { return append([]byte(nil), defaultYAML...) }

// Default returns the embedded default topology (contoso.yaml), with
// defaults applied and validated.
func Default() *Topology {
	t, err := Parse(DefaultFile, defaultYAML)
	if err != nil {
		panic("embedded default topology is invalid: " + err.Error()) // caught by tests
	}
	return t
}

// Load reads, decodes, defaults and validates a topology file. Errors name
// the file, line, column and field (as *Error values inside an Errors list).
func Load(path string) (*Topology, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	if fi.Size() > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("file is %d bytes, more than the %d allowed", fi.Size(), MaxFileSize)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load topology: %w", err)
	}
	return Parse(path, data)
}

// LoadOrDefault loads path, or returns the default topology when path is empty.
func LoadOrDefault(path string) (*Topology, error) {
	if path == "" {
		return Default(), nil
	}
	return Load(path)
}

// Parse decodes a topology from YAML. file names the source in errors.
// Unknown fields, wrong types and bad durations are errors; after decoding,
// ApplyDefaults and Validate run, and validation errors get their position
// from the YAML text. It never panics on any input.
func Parse(file string, data []byte) (t *Topology, err error) {
	defer func() {
		if r := recover(); r != nil { // the YAML library must not take the lab down
			t, err = nil, Errors{{File: file, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	if len(data) > MaxFileSize {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("document is %d bytes, more than the %d allowed", len(data), MaxFileSize)}}
	}
	var top Topology
	if err := yaml.UnmarshalWithOptions(data, &top, yaml.Strict()); err != nil {
		return nil, Errors{decodeError(file, data, err)}
	}
	top.ApplyDefaults()
	if errs := top.Validate(); len(errs) > 0 {
		locate(file, data, errs)
		return nil, errs
	}
	return &top, nil
}

// decodeError turns an error of the YAML decoder into an *Error with the
// position and the YAML path of the offending node.
func decodeError(file string, data []byte, err error) *Error {
	var own *Error
	if errors.As(err, &own) {
		e := *own
		e.File = file
		return &e
	}
	out := &Error{File: file, Msg: err.Error()}
	var ye yaml.Error
	if errors.As(err, &ye) {
		out.Msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			out.Line, out.Column = tk.Position.Line, tk.Position.Column
			out.Field = pathAt(data, out.Line, out.Column)
		}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		out.Msg = typeMessage(te)
	}
	var uf *yaml.UnknownFieldError
	if errors.As(err, &uf) {
		out.Msg = uf.Message + " (not part of the topology schema; check spelling and indentation)"
	}
	return out
}

func typeMessage(te *yaml.TypeError) string {
	want := "a value of another type"
	if te.DstType != nil {
		want = kindName(te.DstType)
	}
	got := "value"
	if te.SrcType != nil {
		got = kindName(te.SrcType)
	}
	return fmt.Sprintf("expected %s, got %s", want, got)
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean (true/false)"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Ptr:
		return kindName(t.Elem())
	}
	return t.String()
}

// pathAt returns the YAML path of the node at line:col, or "".
func pathAt(data []byte, line, col int) string {
	f, err := parser.ParseBytes(data, 0)
	if err != nil || f == nil {
		return ""
	}
	v := &finder{line: line, col: col}
	for _, d := range f.Docs {
		ast.Walk(v, d)
	}
	if v.found == nil {
		return ""
	}
	return cleanPath(v.found.GetPath())
}

type finder struct {
	line, col int
	found     ast.Node
}

func (f *finder) Visit(n ast.Node) ast.Visitor {
	if n == nil {
		return nil
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line == f.line && tk.Position.Column == f.col {
		if _, isMap := n.(*ast.MappingValueNode); !isMap || f.found == nil {
			f.found = n
		}
	}
	return f
}

// locate fills the file and the line and column of each validation error
// from the YAML text, using the error's field path. A field that is absent
// from the text points at its closest present parent.
func locate(file string, data []byte, errs Errors) {
	f, perr := parser.ParseBytes(data, 0)
	for _, e := range errs {
		e.File = file
		if perr != nil || f == nil || e.Field == "" {
			continue
		}
		for p := e.Field; p != ""; p = parentPath(p) {
			path, err := yaml.PathString("$." + p)
			if err != nil {
				continue
			}
			n, err := path.FilterFile(f)
			if err != nil || n == nil {
				continue
			}
			if tk := n.GetToken(); tk != nil && tk.Position != nil {
				e.Line, e.Column = tk.Position.Line, tk.Position.Column
				break
			}
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		if errs[i].Line != errs[j].Line {
			return errs[i].Line < errs[j].Line
		}
		return errs[i].Column < errs[j].Column
	})
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		switch p[i] {
		case '.':
			return p[:i]
		case '[':
			return p[:i]
		}
	}
	return ""
}

// Digest is a stable SHA-256 over the topology's canonical JSON form; results
// record it so two runs can be checked to use the same topology.
func (t *Topology) Digest() string {
	b, err := json.Marshal(t)
	if err != nil {
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Clone returns a deep copy of t.
func (t *Topology) Clone() *Topology {
	b, err := json.Marshal(t)
	if err != nil {
		panic(err)
	}
	var c Topology
	if err := json.Unmarshal(b, &c); err != nil {
		panic(err)
	}
	return &c
}
