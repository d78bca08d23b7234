package server

import (
	"context"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/partition"
)

type keyOpRequest struct {
	Alg   string `json:"alg"`
	Value b64    `json:"value"`
	IV    b64    `json:"iv"`
	AAD   b64    `json:"aad"`
	Tag   b64    `json:"tag"`
}

type keyOpResult struct {
	KID   string `json:"kid"`
	Value b64    `json:"value"`
	IV    b64    `json:"iv,omitempty"`
	Tag   b64    `json:"tag,omitempty"`
	AAD   b64    `json:"aad,omitempty"`
}

type cryptoFunc func(ctx context.Context, c mhsm.Caller, name, ver string, alg partition.Alg, req *keyOpRequest) (mhsm.Result, error)

// keyOp decodes a key-operation request, runs op and answers with the
// result and the HSM's modelled latency.
func (s *handler) keyOp(q *request, op cryptoFunc, echoAAD bool) (result, error) {
	var req keyOpRequest
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if req.Alg == "" {
		return result{}, badParameter("alg is required")
	}
	if req.Value == nil {
		return result{}, badParameter("value is required")
	}
	r, err := op(q.ctx, q.caller, q.params[0], q.params[1], partition.Alg(req.Alg), &req)
	if err != nil {
		return result{}, err
	}
	out := keyOpResult{KID: s.rebase(q, r.KID), Value: r.Value, IV: r.IV, Tag: r.Tag}
	if echoAAD {
		out.AAD = req.AAD
	}
	return result{status: 200, v: out, served: r.Served}, nil
}

// wrapKey: POST /keys/{name}[/{version}]/wrapkey.
func (s *handler) wrapKey(q *request) (result, error) {
	return s.keyOp(q, func(ctx context.Context, c mhsm.Caller, name, ver string, alg partition.Alg, req *keyOpRequest) (mhsm.Result, error) {
		return s.h.WrapKey(ctx, c, name, ver, alg, req.Value)
	}, false)
}

// unwrapKey: POST /keys/{name}[/{version}]/unwrapkey.
func (s *handler) unwrapKey(q *request) (result, error) {
	return s.keyOp(q, func(ctx context.Context, c mhsm.Caller, name, ver string, alg partition.Alg, req *keyOpRequest) (mhsm.Result, error) {
		return s.h.UnwrapKey(ctx, c, name, ver, alg, req.Value)
	}, false)
}

// encrypt: POST /keys/{name}[/{version}]/encrypt. AES-GCM's IV is made by
// the HSM; the response carries it with the tag (and echoes aad).
func (s *handler) encrypt(q *request) (result, error) {
	return s.keyOp(q, func(ctx context.Context, c mhsm.Caller, name, ver string, alg partition.Alg, req *keyOpRequest) (mhsm.Result, error) {
		return s.h.Encrypt(ctx, c, name, ver, alg, req.Value, req.AAD)
	}, true)
}

// decrypt: POST /keys/{name}[/{version}]/decrypt.
func (s *handler) decrypt(q *request) (result, error) {
	return s.keyOp(q, func(ctx context.Context, c mhsm.Caller, name, ver string, alg partition.Alg, req *keyOpRequest) (mhsm.Result, error) {
		return s.h.Decrypt(ctx, c, name, ver, alg, req.Value, req.IV, req.Tag, req.AAD)
	}, false)
}
