// Package scenarios is hsmlab's scenario library: one YAML file per DR
// question, embedded in the binary. A scenario can also be loaded from a
// path.
package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"github.com/hsmlab/hsmlab/lab"
)

//go:embed *.yaml
var files embed.FS

// Names lists the built-in scenarios, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".yaml") {
			out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
		}
	}
	sort.Strings(out)
	return out
}

// Source returns the YAML of a built-in scenario.
func Source(name string) ([]byte, bool) {
	b, err := files.ReadFile(name + ".yaml")
	return b, err == nil
}

// Load returns a built-in scenario by name, or loads the file at nameOrPath
// when it names an existing file (or ends in .yaml/.yml).
func Load(nameOrPath string) (*lab.Scenario, error) {
	if b, ok := Source(nameOrPath); ok {
		return lab.ParseScenario("scenarios/"+nameOrPath+".yaml", b)
	}
	if _, err := os.Stat(nameOrPath); err == nil || strings.HasSuffix(nameOrPath, ".yaml") || strings.HasSuffix(nameOrPath, ".yml") {
		return lab.LoadScenario(nameOrPath)
	}
	return nil, fmt.Errorf("no built-in scenario %q and no such file (built-in: %s)", nameOrPath, strings.Join(Names(), ", "))
}

// All loads every built-in scenario.
func All() ([]*lab.Scenario, error) {
	var out []*lab.Scenario
	for _, n := range Names() {
		s, err := Load(n)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}
