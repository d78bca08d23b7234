package keyclient_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hsmlab/hsmlab/emulators/keyclient"
)

func TestClassAndCode(t *testing.T) {
	base := errors.New("boom")
	e := &keyclient.Error{Class: keyclient.ErrDenied, Code: "KeyDisabled", Op: "unwrapKey", Key: "k", Err: base}
	wrapped := fmt.Errorf("sql protector check: %w", e)
	if keyclient.Class(wrapped) != keyclient.ErrDenied {
		t.Fatalf("class = %v", keyclient.Class(wrapped))
	}
	if !errors.Is(wrapped, base) {
		t.Fatal("underlying error lost")
	}
	if keyclient.Code(wrapped) != "KeyDisabled" {
		t.Fatalf("code = %q", keyclient.Code(wrapped))
	}
	if keyclient.Class(base) != nil || keyclient.Class(nil) != nil || keyclient.Code(base) != "" {
		t.Fatal("unclassified error got a class or code")
	}
	if got := e.Error(); got != "unwrapKey k: key access denied (KeyDisabled): boom" {
		t.Fatalf("message %q", got)
	}
}
