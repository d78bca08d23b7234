package rbac_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
)

func TestParseScope(t *testing.T) {
	long := strings.Repeat("k", 127)
	for _, tc := range []struct {
		name, in string
		ok       bool
	}{
		{"root", "/", true},
		{"keys", "/keys", true},
		{"key", "/keys/Contoso-SQLMI-CMK", true},
		{"one char key", "/keys/a", true},
		{"digits", "/keys/0123", true},
		{"127 chars", "/keys/" + long, true},
		{"128 chars", "/keys/" + long + "k", false},
		{"empty", "", false},
		{"no slash", "keys", false},
		{"empty key name", "/keys/", false},
		{"nested", "/keys/a/b", false},
		{"trailing slash", "/keys/a/", false},
		{"double slash", "//", false},
		{"keys trailing slash", "/keys//", false},
		{"underscore", "/keys/a_b", false},
		{"dot", "/keys/a.b", false},
		{"space", "/keys/a b", false},
		{"non-ascii", "/keys/ключ", false},
		{"secrets", "/secrets/a", false},
		{"case of keys segment", "/Keys/a", false},
		{"version", "/keys/a/0123456789abcdef", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := rbac.ParseScope(tc.in)
			if tc.ok {
				if err != nil || string(s) != tc.in {
					t.Errorf("ParseScope(%q) = %q, %v", tc.in, s, err)
				}
				return
			}
			if !errors.Is(err, rbac.ErrBadScope) {
				t.Errorf("ParseScope(%q) = %q, %v; want ErrBadScope", tc.in, s, err)
			}
			if err != nil && !strings.Contains(err.Error(), "/keys/<key-name>") {
				t.Errorf("error %q does not say what is valid", err)
			}
		})
	}
}

func TestScopeCovers(t *testing.T) {
	for _, tc := range []struct {
		at, target rbac.Scope
		want       bool
	}{
		{"/", "/keys/A", true},
		{"/", "/keys/B", true},
		{"/", "/", true},
		{"/", "/keys", true},
		{"/keys", "/keys/A", true},
		{"/keys", "/keys/B", true},
		{"/keys", "/", true},
		{"/keys/A", "/keys/A", true},
		{"/keys/A", "/keys/B", false},
		{"/keys/A", "/", false},
		{"/keys/A", "/keys", false},
		{"/keys/A", "/keys/a", false},
		{"/", "/keys/a/b", false},
		{"bad", "/", false},
	} {
		t.Run(string(tc.at)+" covers "+string(tc.target), func(t *testing.T) {
			if got := tc.at.Covers(tc.target); got != tc.want {
				t.Errorf("Covers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestScopeHelpers(t *testing.T) {
	if rbac.KeyScope("K") != "/keys/K" {
		t.Errorf("KeyScope = %q", rbac.KeyScope("K"))
	}
	if n, ok := rbac.Scope("/keys/K").KeyName(); !ok || n != "K" {
		t.Errorf("KeyName = %q %v", n, ok)
	}
	for _, s := range []rbac.Scope{"/", "/keys", "/keys/a/b"} {
		if _, ok := s.KeyName(); ok {
			t.Errorf("%q.KeyName() ok", s)
		}
	}
	if !rbac.ScopeHSM.IsHSM() || !rbac.ScopeKeys.IsHSM() || rbac.Scope("/keys/K").IsHSM() {
		t.Error("IsHSM wrong")
	}
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"/", "/keys", "/keys/Contoso-SQLMI-CMK", "/keys/a/b", "keys", "", "/keys/", "/keys/a_b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := rbac.ParseScope(in)
		if err != nil {
			if !errors.Is(err, rbac.ErrBadScope) || s != "" {
				t.Fatalf("ParseScope(%q) = %q, %v", in, s, err)
			}
			if rbac.Scope(in).Covers("/") || rbac.Scope("/").Covers(rbac.Scope(in)) {
				t.Fatalf("invalid scope %q covers or is covered", in)
			}
			return
		}
		if string(s) != in {
			t.Fatalf("ParseScope(%q) rewrote to %q", in, s)
		}
		if s.Validate() != nil || !s.Covers(s) || !rbac.ScopeHSM.Covers(s) {
			t.Fatalf("valid scope %q is inconsistent", s)
		}
		if s.IsHSM() {
			return
		}
		name, ok := s.KeyName()
		if !ok || len(name) < 1 || len(name) > 127 || rbac.KeyScope(name) != s {
			t.Fatalf("ParseScope(%q): key name %q %v", in, name, ok)
		}
		for _, c := range name {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("ParseScope(%q) accepted %q", in, c)
			}
		}
	})
}
