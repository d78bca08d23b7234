package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"

	"github.com/hsmlab/hsmlab/topology"
)

// Scenario is one DR question as data: the topology it runs on (with
// parameter overrides), how long, what is probed, the timeline of faults and
// actions, and the expectations that decide the verdict.
type Scenario struct {
	// File is where the scenario came from (set by the loader).
	File string `yaml:"-" json:"file"`
	// Name is the scenario's name, after the question it answers.
	Name string `yaml:"name" json:"name"`
	// Question is the DR question, one sentence.
	Question string `yaml:"question" json:"question"`
	// Expected is the expected outcome according to the facts.
	Expected string `yaml:"expected" json:"expected"`
	// Facts are the sources of the expected outcome.
	Facts []string `yaml:"facts,omitempty" json:"facts,omitempty"`
	// Topology is a topology file (relative to the scenario file); empty
	// means the embedded default.
	Topology string `yaml:"topology,omitempty" json:"topology,omitempty"`
	// Overrides set topology parameters by YAML path
	// ("behaviour.hsm.primaryDownWrites": denied).
	Overrides map[string]any `yaml:"overrides,omitempty" json:"overrides,omitempty"`
	// Duration is how much (modelled) time the run covers.
	Duration topology.Duration `yaml:"duration" json:"duration"`
	// Seed is the default seed (the CLI's --seed overrides it).
	Seed uint64 `yaml:"seed,omitempty" json:"seed"`
	// Probes are the observations; empty means the standard set.
	Probes []topology.ProbeSpec `yaml:"probes,omitempty" json:"probes,omitempty"`
	// Timeline holds the faults and actions.
	Timeline []Step `yaml:"timeline" json:"timeline"`
	// Expect are expressions over the results that must all hold.
	Expect []string `yaml:"expect" json:"expect"`

	pos map[string][2]int // field path → line, column (for later errors)
}

// Step is one timeline entry: a fault injected at At and reverted after Hold
// (zero Hold: reverted at the end of the run), or an action done at At.
type Step struct {
	Name string            `json:"name"`
	Type string            `json:"type"`
	Kind Kind              `json:"kind"`
	At   topology.Duration `json:"at"`
	Hold topology.Duration `json:"hold,omitempty"`
	// Value is the decoded Fault or Action with its parameters.
	Value any `json:"params"`

	line, col int
}

// Fault returns the step's fault (nil for an action).
func (s Step) Fault() Fault { f, _ := s.Value.(Fault); return f }

// Action returns the step's action (nil for a fault).
func (s Step) Action() Action { a, _ := s.Value.(Action); return a }

var envelope = []string{"type", "name", "at", "hold"}

// UnmarshalYAML decodes a timeline entry: the envelope (type, name, at,
// hold) first, then the type's parameters, strictly, into a new value of
// the registered type.
func (s *Step) UnmarshalYAML(node ast.Node) error {
	m, ok := node.(*ast.MappingNode)
	if !ok {
		return posErr(node, "a timeline entry is a mapping with type, at and the type's parameters")
	}
	if tk := node.GetToken(); tk != nil && tk.Position != nil {
		s.line, s.col = tk.Position.Line, tk.Position.Column
	}
	params := &ast.MappingNode{BaseNode: m.BaseNode, Start: m.Start, End: m.End, IsFlowStyle: m.IsFlowStyle}
	var typeNode ast.Node
	for _, kv := range m.Values {
		key := kv.Key.String()
		if !slices.Contains(envelope, key) {
			params.Values = append(params.Values, kv)
			continue
		}
		var err error
		switch key {
		case "type":
			typeNode = kv.Value
			err = yaml.NodeToValue(kv.Value, &s.Type)
		case "name":
			err = yaml.NodeToValue(kv.Value, &s.Name)
		case "at":
			err = yaml.NodeToValue(kv.Value, &s.At)
		case "hold":
			err = yaml.NodeToValue(kv.Value, &s.Hold)
		}
		if err != nil {
			return yamlErr(kv.Value, err)
		}
	}
	if typeNode == nil {
		return posErr(node, fmt.Sprintf("timeline entry has no type (faults: %s; actions: %s)", typeNames(KindFault), typeNames(KindAction)))
	}
	ti, ok := Lookup(s.Type)
	if !ok {
		return posErr(typeNode, fmt.Sprintf("unknown fault or action type %q (faults: %s; actions: %s)", s.Type, typeNames(KindFault), typeNames(KindAction)))
	}
	s.Kind = ti.Kind
	v := ti.New()
	if len(params.Values) > 0 {
		if err := yaml.NodeToValue(params, v, yaml.Strict()); err != nil {
			return yamlErr(params, err)
		}
	}
	s.Value = v
	if s.Name == "" {
		s.Name = s.Type
	}
	return nil
}

func posErr(node ast.Node, msg string) error {
	e := &topology.Error{Field: strings.TrimPrefix(strings.TrimPrefix(node.GetPath(), "$"), "."), Msg: msg}
	if tk := node.GetToken(); tk != nil && tk.Position != nil {
		e.Line, e.Column = tk.Position.Line, tk.Position.Column
	}
	return e
}

// yamlErr turns an error of the YAML decoder into a positioned error.
func yamlErr(node ast.Node, err error) error {
	var own *topology.Error
	if errors.As(err, &own) {
		return own
	}
	var ye yaml.Error
	if errors.As(err, &ye) {
		e := &topology.Error{Msg: ye.GetMessage()}
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			e.Line, e.Column = tk.Position.Line, tk.Position.Column
		}
		var te *yaml.TypeError
		if errors.As(err, &te) && te.DstType != nil {
			e.Msg = fmt.Sprintf("wrong type: expected %s", te.DstType.Kind())
		}
		var uf *yaml.UnknownFieldError
		if errors.As(err, &uf) {
			e.Msg = uf.Message + " (not a parameter of this type; `hsmlab faults` lists them)"
		}
		return e
	}
	return posErr(node, err.Error())
}

// LoadScenario reads a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	return ParseScenario(path, data)
}

// ParseScenario decodes and validates a scenario. Errors name the file,
// line, column and field. It never panics.
func ParseScenario(file string, data []byte) (s *Scenario, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, topology.Errors{{File: file, Msg: fmt.Sprintf("cannot parse YAML: %v", r)}}
		}
	}()
	if len(data) > topology.MaxFileSize {
		return nil, topology.Errors{{File: file, Msg: "scenario file too large"}}
	}
	f, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, withFile(file, yamlErr(nil, err))
	}
	if len(f.Docs) == 0 || f.Docs[0].Body == nil {
		return nil, topology.Errors{{File: file, Msg: "empty scenario"}}
	}
	var sc Scenario
	if err := yaml.NodeToValue(f.Docs[0].Body, &sc, yaml.Strict()); err != nil {
		return nil, withFile(file, yamlErr(f.Docs[0].Body, err))
	}
	sc.File = file
	sc.pos = map[string][2]int{}
	recordPositions(f.Docs[0].Body, sc.pos)
	if errs := sc.validate(); len(errs) > 0 {
		for _, e := range errs {
			e.File = file
			if p, ok := sc.pos[e.Field]; ok && e.Line == 0 {
				e.Line, e.Column = p[0], p[1]
			}
		}
		return nil, errs
	}
	return &sc, nil
}

func withFile(file string, err error) error {
	var e *topology.Error
	if errors.As(err, &e) {
		c := *e
		c.File = file
		return topology.Errors{&c}
	}
	return topology.Errors{{File: file, Msg: err.Error()}}
}

// recordPositions remembers the position of every mapping key by path, so
// validation errors found after decoding can point into the file.
func recordPositions(n ast.Node, pos map[string][2]int) {
	ast.Walk(visitor(func(n ast.Node) {
		mv, ok := n.(*ast.MappingValueNode)
		if !ok {
			return
		}
		p := strings.TrimPrefix(strings.TrimPrefix(mv.Value.GetPath(), "$"), ".")
		if tk := mv.Key.GetToken(); tk != nil && tk.Position != nil {
			pos[p] = [2]int{tk.Position.Line, tk.Position.Column}
		}
		if seq, ok := mv.Value.(*ast.SequenceNode); ok {
			for i, v := range seq.Values {
				if tk := v.GetToken(); tk != nil && tk.Position != nil {
					pos[fmt.Sprintf("%s[%d]", p, i)] = [2]int{tk.Position.Line, tk.Position.Column}
				}
			}
		}
		if m, ok := mv.Value.(*ast.MappingNode); ok && p == "overrides" {
			for _, kv := range m.Values {
				if tk := kv.Key.GetToken(); tk != nil && tk.Position != nil {
					pos["overrides."+kv.Key.String()] = [2]int{tk.Position.Line, tk.Position.Column}
				}
			}
		}
	}), n)
}

type visitor func(ast.Node)

func (v visitor) Visit(n ast.Node) ast.Visitor {
	if n != nil {
		v(n)
	}
	return v
}

func (sc *Scenario) validate() topology.Errors {
	var errs topology.Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, &topology.Error{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if sc.Name == "" {
		add("name", "scenario name is required")
	}
	if sc.Question == "" {
		add("question", "state the DR question the scenario answers")
	}
	if sc.Duration <= 0 {
		add("duration", "duration is required and must be positive")
	}
	if len(sc.Expect) == 0 {
		add("expect", "at least one expectation is required (otherwise the scenario cannot fail)")
	}
	names := map[string]bool{}
	for i, st := range sc.Timeline {
		f := fmt.Sprintf("timeline[%d]", i)
		e := func(format string, args ...any) {
			errs = append(errs, &topology.Error{Field: f, Line: st.line, Column: st.col, Msg: fmt.Sprintf(format, args...)})
		}
		if names[st.Name] {
			e("duplicate timeline name %q; give each entry a distinct name", st.Name)
		}
		names[st.Name] = true
		if st.At.D() >= sc.Duration.D() {
			e("at %v is not inside the run (duration %v)", st.At, sc.Duration)
		}
		if st.Kind == KindAction && st.Hold != 0 {
			e("an action (%s) has no hold", st.Type)
		}
		if ir, ok := st.Value.(Irreversible); ok && ir.Irreversible() && st.Hold != 0 {
			e("%s is irreversible: remove hold", st.Type)
		}
		if st.At.D()+st.Hold.D() > sc.Duration.D() {
			e("at %v + hold %v ends after the run (duration %v)", st.At, st.Hold, sc.Duration)
		}
	}
	for i, p := range sc.Probes {
		f := fmt.Sprintf("probes[%d]", i)
		if _, ok := topology.ProbeKinds[p.Type]; !ok {
			add(f+".type", "unknown probe type %q (known: %s)", p.Type, strings.Join(sortedKinds(), ", "))
		}
		if p.Target == "" {
			add(f+".target", "probe target is required")
		}
		if p.Every < 0 {
			add(f+".every", "must be positive")
		}
	}
	for i, ex := range sc.Expect {
		if _, err := compileExpect(ex); err != nil {
			add(fmt.Sprintf("expect[%d]", i), "%v", err)
		}
	}
	return errs
}

func sortedKinds() []string {
	var out []string
	for k := range topology.ProbeKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ResolveTopology loads the scenario's topology and applies its overrides.
// Override errors point at the override in the scenario file.
func (sc *Scenario) ResolveTopology() (*topology.Topology, error) {
	var base *topology.Topology
	if sc.Topology == "" {
		base = topology.Default()
	} else {
		p := sc.Topology
		if !filepath.IsAbs(p) && sc.File != "" && !strings.HasPrefix(sc.File, "scenarios/") {
			p = filepath.Join(filepath.Dir(sc.File), p)
		}
		t, err := topology.Load(p)
		if err != nil {
			return nil, err
		}
		base = t
	}
	if len(sc.Overrides) == 0 {
		return base, nil
	}
	return applyOverrides(sc, base)
}

func applyOverrides(sc *Scenario, base *topology.Topology) (*topology.Topology, error) {
	src, err := yaml.Marshal(base)
	if err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	f, err := parser.ParseBytes(src, 0)
	if err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	keys := make([]string, 0, len(sc.Overrides))
	for k := range sc.Overrides {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fail := func(key, format string, args ...any) error {
		e := &topology.Error{File: sc.File, Field: "overrides." + key, Msg: fmt.Sprintf(format, args...)}
		if p, ok := sc.pos["overrides."+key]; ok {
			e.Line, e.Column = p[0], p[1]
		}
		return topology.Errors{e}
	}
	for _, k := range keys {
		path, err := yaml.PathString("$." + k)
		if err != nil {
			return nil, fail(k, "%q is not a topology path (example: behaviour.hsm.dnsTTL)", k)
		}
		if _, err := path.FilterFile(f); err != nil {
			return nil, fail(k, "the topology has no parameter %q", k)
		}
		val, err := yaml.Marshal(sc.Overrides[k])
		if err != nil {
			return nil, fail(k, "%v", err)
		}
		if err := path.ReplaceWithReader(f, strings.NewReader(string(val))); err != nil {
			return nil, fail(k, "cannot set: %v", err)
		}
	}
	t, err := topology.Parse(sc.File+" (topology with overrides)", []byte(f.String()))
	if err != nil {
		var e *topology.Error
		if errors.As(err, &e) {
			for _, k := range keys {
				if strings.HasPrefix(e.Field, k) || strings.HasPrefix(k, e.Field) {
					return nil, fail(k, "%s", e.Msg)
				}
			}
		}
		return nil, fmt.Errorf("overrides make the topology invalid: %w", err)
	}
	return t, nil
}

// Window is the part of the run a metric covers.
type Window struct{ From, To time.Duration }
