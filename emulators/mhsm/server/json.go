package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// b64 is a byte string on the wire: Key Vault's base64url without padding.
// Decoding also accepts padding and the standard alphabet.
type b64 []byte

// MarshalJSON writes unpadded base64url (azkeys rejects padding).
func (b b64) MarshalJSON() ([]byte, error) {
	return json.Marshal(base64.RawURLEncoding.EncodeToString(b))
}

// UnmarshalJSON reads a base64url (or base64) string; null leaves b nil.
func (b *b64) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return errors.New("expected a base64url string")
	}
	v, err := decodeB64(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func decodeB64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if v, err := base64.RawURLEncoding.DecodeString(s); err == nil {
		return v, nil
	}
	v, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("value is not base64url")
	}
	return v, nil
}

// unixTime is a time as Key Vault sends it: seconds since the epoch.
func unixTime(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}

// fromUnix converts a request's Unix seconds, refusing values outside the
// years 1970–9999.
func fromUnix(u *int64) (*time.Time, error) {
	if u == nil {
		return nil, nil
	}
	if *u < 0 || *u > 253402300799 {
		return nil, errors.New("time out of range")
	}
	t := time.Unix(*u, 0).UTC()
	return &t, nil
}

// decodeJSON decodes a request body into v; an empty body is refused.
func decodeJSON(body []byte, v any) *apiError {
	if len(bytes.TrimSpace(body)) == 0 {
		return badParameter("the request body is empty")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badParameter("malformed request body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"InternalError","message":"cannot encode the response"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
