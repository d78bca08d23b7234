package topology

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// Duration is a time.Duration written in YAML either as a Go duration
// ("5s", "6m", "1h30m"), with a day suffix ("90d", "1.5d"), or as an ISO 8601
// duration as Key Vault's rotation policies use ("P28D", "PT1H", "P1Y2M").
// In ISO 8601 form a year counts 365 days and a month 30 days.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats d the way ParseDuration reads it back.
func (d Duration) String() string {
	td := time.Duration(d)
	if td != 0 && td%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(td/(24*time.Hour)), 10) + "d"
	}
	return td.String()
}

// MarshalYAML writes d in the form String returns.
func (d Duration) MarshalYAML() ([]byte, error) { return []byte(strconv.Quote(d.String())), nil }

// MarshalText writes d in the form String returns (JSON output).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalYAML reads a duration from a scalar node; an invalid value is an
// error carrying the node's position.
func (d *Duration) UnmarshalYAML(node ast.Node) error {
	s := strings.TrimSpace(node.String())
	if sn, ok := node.(*ast.StringNode); ok {
		s = sn.Value
	}
	v, err := ParseDuration(s)
	if err != nil {
		return nodeError(node, err.Error())
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses the forms described on Duration. Negative durations
// are rejected.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var (
		v   time.Duration
		err error
	)
	switch {
	case strings.HasPrefix(s, "P"):
		v, err = parseISO8601(s)
	case strings.HasSuffix(s, "d"):
		var f float64
		f, err = strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err == nil && (f > 100000 || f < -100000) {
			err = fmt.Errorf("out of range")
		}
		v = time.Duration(f * float64(24*time.Hour))
	default:
		v, err = time.ParseDuration(s)
	}
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (use 30s, 10m, 1h, 90d or ISO 8601 like P28D)", s)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return v, nil
}

func parseISO8601(s string) (time.Duration, error) {
	rest := s[1:]
	if rest == "" {
		return 0, fmt.Errorf("empty ISO 8601 duration")
	}
	var total time.Duration
	inTime := false
	units := map[bool]map[byte]time.Duration{
		false: {'Y': 365 * 24 * time.Hour, 'M': 30 * 24 * time.Hour, 'W': 7 * 24 * time.Hour, 'D': 24 * time.Hour},
		true:  {'H': time.Hour, 'M': time.Minute, 'S': time.Second},
	}
	num := ""
	seen := false
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		switch {
		case c == 'T':
			if inTime || num != "" {
				return 0, fmt.Errorf("misplaced T")
			}
			inTime = true
		case (c >= '0' && c <= '9') || c == '.':
			num += string(c)
		default:
			u, ok := units[inTime][c]
			if !ok || num == "" {
				return 0, fmt.Errorf("bad unit %q", c)
			}
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || f > 1e6 {
				return 0, fmt.Errorf("bad number %q", num)
			}
			total += time.Duration(f * float64(u))
			num = ""
			seen = true
		}
	}
	if num != "" || !seen {
		return 0, fmt.Errorf("incomplete ISO 8601 duration")
	}
	return total, nil
}

// UnmarshalText reads the forms described on Duration (JSON input).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
