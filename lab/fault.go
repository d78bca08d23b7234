package lab

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"github.com/hsmlab/hsmlab/topology"
)

// Fault is something that goes wrong, injected at a point of a scenario's
// timeline and reverted after its hold. Faults are parameterised values,
// registered by type name; a scenario's YAML decodes into them.
type Fault interface {
	// Inject applies the fault to the running environment.
	Inject(ctx context.Context, env topology.Env) error
	// Revert undoes Inject. It is idempotent and safe after a partial Inject.
	Revert(ctx context.Context, env topology.Env) error
}

// Irreversible is implemented by faults that cannot be reverted (removing an
// extended region purges it). A scenario may not give them a hold; Revert is
// not called.
type Irreversible interface{ Irreversible() bool }

// TopologyFault is implemented by misconfiguration faults: they change the
// topology before the environment comes up (a wrong role, a missing DES,
// purge protection off) and are not injected or reverted during the run.
// Their timeline entry has at: 0 and no hold.
type TopologyFault interface {
	ApplyTopology(t *topology.Topology) error
}

// Validator is implemented by faults and actions whose parameters need
// checking against the topology before the run starts.
type Validator interface {
	Validate(t *topology.Topology) error
}

// Describer gives a one-line description of a configured fault or action
// for the history ("2 of 3 partitions in southindia").
type Describer interface{ Describe() string }

// Action is a runbook step a scenario's timeline takes (a SQL failover, a
// revalidation): done once, not reverted.
type Action interface {
	Do(ctx context.Context, env topology.Env) error
}

// Kind says whether a registered type is a fault or an action.
type Kind string

// Kinds of timeline entries.
const (
	KindFault  Kind = "fault"
	KindAction Kind = "action"
)

// TypeInfo describes a registered fault or action type.
type TypeInfo struct {
	Type    string
	Kind    Kind
	Summary string
	// Facts names the facts the type's behaviour rests on.
	Facts string
	// New returns a zero value with defaults set, ready to decode parameters into.
	New func() any
}

// Param documents one parameter of a type, read from its struct tags:
// `yaml:"name"` and `doc:"..."`.
type Param struct {
	Name     string
	Type     string
	Doc      string
	Required bool
	Default  string
}

// Params lists the parameters of a registered type.
func (ti TypeInfo) Params() []Param {
	v := reflect.ValueOf(ti.New())
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var out []Param
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		p := Param{Name: name, Type: typeName(f.Type), Doc: f.Tag.Get("doc"), Required: f.Tag.Get("required") == "true"}
		if fv := v.Field(i); !fv.IsZero() {
			p.Default = fmt.Sprint(fv.Interface())
		}
		out = append(out, p)
	}
	return out
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(topology.Duration(0)):
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	}
	return t.Kind().String()
}

var (
	regMu    sync.RWMutex
	registry = map[string]TypeInfo{}
)

// Register adds a fault or action type. It panics on a duplicate or on a New
// that returns neither a Fault nor an Action (a programming error, caught at
// init).
func Register(ti TypeInfo) {
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[ti.Type]; dup {
		panic("lab: duplicate registration of " + ti.Type)
	}
	v := ti.New()
	_, isFault := v.(Fault)
	_, isAction := v.(Action)
	switch {
	case ti.Kind == KindFault && !isFault, ti.Kind == KindAction && !isAction:
		panic(fmt.Sprintf("lab: %s is registered as a %s but does not implement it", ti.Type, ti.Kind))
	}
	registry[ti.Type] = ti
}

// Lookup returns a registered type.
func Lookup(typ string) (TypeInfo, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	ti, ok := registry[typ]
	return ti, ok
}

// Types returns every registered type of a kind ("" for all), sorted.
func Types(kind Kind) []TypeInfo {
	regMu.RLock()
	defer regMu.RUnlock()
	var out []TypeInfo
	for _, ti := range registry {
		if kind == "" || ti.Kind == kind {
			out = append(out, ti)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

func typeNames(kind Kind) string {
	var names []string
	for _, ti := range Types(kind) {
		names = append(names, ti.Type)
	}
	return strings.Join(names, ", ")
}

// ErrNotSupported is returned by providers and faults for a fault the
// provider cannot perform; the run refuses it before starting.
var ErrNotSupported = errors.New("not supported on this provider")
