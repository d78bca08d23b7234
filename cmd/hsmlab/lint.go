package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hsmlab/hsmlab/topology"
)

func newLintCmd() *cobra.Command {
	var format string
	var rules bool
	cmd := &cobra.Command{
		Use:   "lint [topology.yaml]",
		Short: "Report DR and security mistakes in a topology, each with the fact it rests on",
		Long: `lint checks a topology for the mistakes that break disaster recovery or least
privilege before anything is built: role confusion (Crypto Officer given to key
managers), service identities with too much access, regions without a Disk
Encryption Set, an extended region Microsoft cannot extend to, purge
protection off, a weak security-domain quorum, and more (--rules lists them).

Exit status: 0 no error-level finding, 1 at least one error, 2 bad input.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if rules {
				return printRules(cmd.OutOrStdout(), format)
			}
			top, err := loadTopology(args)
			if err != nil {
				return err
			}
			findings := topology.Lint(top)
			w := cmd.OutOrStdout()
			if format == "json" {
				if err := writeJSON(w, struct {
					Topology string             `json:"topology"`
					Findings []topology.Finding `json:"findings"`
				}{topologyName(args), nonNil(findings)}); err != nil {
					return err
				}
			} else {
				printFindings(w, topologyName(args), findings)
			}
			if topology.HasErrors(findings) {
				return failed("lint found errors")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "output format: table or json")
	cmd.Flags().BoolVar(&rules, "rules", false, "list the lint rules instead of checking a topology")
	return cmd
}

func nonNil(f []topology.Finding) []topology.Finding {
	if f == nil {
		return []topology.Finding{}
	}
	return f
}

func printFindings(w io.Writer, name string, findings []topology.Finding) {
	if len(findings) == 0 {
		fmt.Fprintf(w, "%s: no findings\n", name)
		return
	}
	rows := make([][]string, 0, len(findings))
	counts := map[topology.Severity]int{}
	for _, f := range findings {
		counts[f.Severity]++
		rows = append(rows, []string{strings.ToUpper(string(f.Severity)), f.Rule, f.Object, f.Message, f.Fact})
	}
	renderTable(w, []string{"Severity", "Rule", "Object", "Finding", "Fact"}, rows, 48)
	fmt.Fprintf(w, "%s: %d error(s), %d warning(s), %d info\n", name,
		counts[topology.SeverityError], counts[topology.SeverityWarning], counts[topology.SeverityInfo])
}

func printRules(w io.Writer, format string) error {
	rules := topology.Rules()
	if format == "json" {
		return writeJSON(w, rules)
	}
	rows := make([][]string, 0, len(rules))
	for _, r := range rules {
		rows = append(rows, []string{r.ID, strings.ToUpper(string(r.Severity)), r.Summary, r.Fact})
	}
	renderTable(w, []string{"Rule", "Severity", "Checks", "Fact"}, rows, 60)
	return nil
}

func checkFormat(format string) error {
	switch format {
	case "table", "json":
		return nil
	}
	return badInput(fmt.Errorf("--format %q: use table or json", format))
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// loadTopology loads the topology named by args[0], or the default one.
// Any problem is bad input (exit status 2).
func loadTopology(args []string) (*topology.Topology, error) {
	path := ""
	if len(args) > 0 {
		path = args[0]
	}
	top, err := topology.LoadOrDefault(path)
	if err != nil {
		return nil, badInput(err)
	}
	return top, nil
}

func topologyName(args []string) string {
	if len(args) > 0 {
		return args[0]
	}
	return topology.DefaultFile + " (embedded default)"
}
