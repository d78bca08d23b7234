package results

import (
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/hsmlab/hsmlab/lab"
)

// JUnit XML: one testsuite per scenario, one testcase per expectation.

type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Skipped  int          `xml:"skipped,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Properties []junitProperty `xml:"properties>property"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes the results as JUnit XML for CI: each scenario is a
// test suite, each expectation a test case; an inconclusive expectation is
// reported as skipped with its reason.
func WriteJUnit(w io.Writer, name string, rs []*Result) error {
	doc := junitSuites{Name: name}
	for _, r := range rs {
		s := junitSuite{Name: r.Scenario.Name, Properties: []junitProperty{
			{Name: "provider", Value: r.Provider}, {Name: "seed", Value: fmt.Sprint(r.Seed)},
			{Name: "topology", Value: r.Topology.Name + "@" + r.Topology.Digest[:12]}, {Name: "question", Value: r.Scenario.Question},
		}}
		for _, c := range r.Checks {
			tc := junitCase{Name: c.Expr, Classname: "hsmlab." + r.Scenario.Name, SystemOut: strings.Join(c.Measured, "\n")}
			switch c.Verdict {
			case lab.Fail:
				tc.Failure = &junitMessage{Message: "expectation not met", Text: strings.Join(c.Measured, "\n")}
				s.Failures++
			case lab.Inconclusive:
				tc.Skipped = &junitMessage{Message: "inconclusive: " + c.Detail}
				s.Skipped++
			}
			s.Cases = append(s.Cases, tc)
			s.Tests++
		}
		doc.Tests += s.Tests
		doc.Failures += s.Failures
		doc.Skipped += s.Skipped
		doc.Suites = append(doc.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
