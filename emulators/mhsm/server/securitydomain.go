package server

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"strings"

	"github.com/hsmlab/hsmlab/emulators/mhsm/secdomain"
)

// The security-domain endpoints follow the Key Vault data-plane API
// (securitydomain.json, api-version 7.2+):
//
//	POST /securitydomain/download        {"certificates":[JWK…],"required":N} → 202 {"value":"<security domain>"}
//	GET  /securitydomain/download/pending → {"status":"Success",…}
//	GET  /securitydomain/upload          → {"key_format":"jwk","transfer_key":{JWK}}  (also /securitydomain/transferkey)
//	POST /securitydomain/upload          {"value":"…"} → 202 {"status":"Success",…}
//	GET  /securitydomain/upload/pending   → {"status":"Success",…}
//
// Deviations: the download and the upload complete before the response (the
// pending endpoints report the finished operation); the security domain
// ("value" of a download) is hsmlab's secdomain.Blob JSON, not Microsoft's
// format; the upload's value is the base64url of the domain recovered with
// a quorum of officer keys and sealed to the transfer key (secdomain.Seal),
// which is what `az keyvault security-domain upload` computes client-side
// from the blob and the officers' private keys, in the lab's format. The
// pending endpoints need authentication only.

// Operation statuses.
const (
	StatusSuccess    = "Success"
	StatusInProgress = "InProgress"
	StatusFailed     = "Failed"
)

type sdDownloadRequest struct {
	Certificates []jsonWebKey `json:"certificates"`
	Required     int          `json:"required"`
}

type sdValue struct {
	Value string `json:"value"`
}

type sdStatus struct {
	Status        string `json:"status"`
	StatusDetails string `json:"status_details,omitempty"`
}

type transferKeyJSON struct {
	KeyFormat   string     `json:"key_format"`
	TransferKey jsonWebKey `json:"transfer_key"`
}

// maxOfficerBits bounds an officer key from a request.
const maxOfficerBits = 8192

// officerKey reads an officer's public key from a JWK: the first x5c
// certificate when present, else n and e.
func officerKey(j jsonWebKey) (*rsa.PublicKey, error) {
	if len(j.X5C) > 0 {
		der, err := base64.StdEncoding.DecodeString(j.X5C[0])
		if err != nil {
			return nil, fmt.Errorf("x5c[0] is not base64 DER")
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[0]: %v", err)
		}
		pub, isRSA := cert.PublicKey.(*rsa.PublicKey)
		if !isRSA {
			return nil, fmt.Errorf("x5c[0] holds no RSA key")
		}
		return pub, nil
	}
	if kty := strings.ToUpper(j.Kty); kty != "RSA" && kty != "RSA-HSM" {
		return nil, fmt.Errorf("kty %.20q: officer keys are RSA", j.Kty)
	}
	if len(j.N) == 0 || len(j.N)*8 > maxOfficerBits || len(j.E) == 0 || len(j.E) > 4 {
		return nil, fmt.Errorf("n and e are missing or out of range")
	}
	e := new(big.Int).SetBytes(j.E)
	if e.Int64() < 3 {
		return nil, fmt.Errorf("public exponent out of range")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(j.N), E: int(e.Int64())}, nil
}

func (s *handler) setStatus(field *string, v string) {
	s.mu.Lock()
	*field = v
	s.mu.Unlock()
}

// sdDownloadOp: POST /securitydomain/download. The first download activates
// the HSM; a later one re-wraps the same domain for new officers.
func (s *handler) sdDownloadOp(q *request) (result, error) {
	var req sdDownloadRequest
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	if len(req.Certificates) > secdomain.MaxOfficers {
		return result{}, badParameter("%d certificates; at most %d", len(req.Certificates), secdomain.MaxOfficers)
	}
	officers := make([]secdomain.Officer, len(req.Certificates))
	for i, c := range req.Certificates {
		pub, err := officerKey(c)
		if err != nil {
			return result{}, badParameter("certificates[%d]: %v", i, err)
		}
		name := c.KID
		if name == "" {
			name = fmt.Sprintf("officer-%d", i+1)
		}
		officers[i] = secdomain.Officer{Name: name, Public: pub}
	}
	blob, err := s.h.DownloadSecurityDomain(q.ctx, q.caller, officers, req.Required)
	if err != nil {
		s.setStatus(&s.sdDownload, StatusFailed)
		return result{}, err
	}
	data, err := blob.Marshal()
	if err != nil {
		return result{}, err
	}
	s.setStatus(&s.sdDownload, StatusSuccess)
	return result{status: http.StatusAccepted, v: sdValue{Value: string(data)},
		header: map[string]string{"Azure-AsyncOperation": q.base + "/securitydomain/download/pending?api-version=" + q.r.URL.Query().Get("api-version")}}, nil
}

func (s *handler) status(field *string, what string) sdStatus {
	s.mu.Lock()
	st := *field
	s.mu.Unlock()
	switch st {
	case StatusSuccess:
		return sdStatus{Status: st, StatusDetails: "the security domain " + what + " completed"}
	case StatusFailed:
		return sdStatus{Status: st, StatusDetails: "the last security domain " + what + " failed"}
	}
	if s.h.Activated() {
		return sdStatus{Status: StatusSuccess, StatusDetails: "the HSM is activated"}
	}
	return sdStatus{Status: StatusFailed, StatusDetails: "no security domain " + what + " has been made"}
}

// sdDownloadPending: GET /securitydomain/download/pending.
func (s *handler) sdDownloadPending(q *request) (result, error) {
	return ok(s.status(&s.sdDownload, "download"))
}

// sdUploadPending: GET /securitydomain/upload/pending.
func (s *handler) sdUploadPending(q *request) (result, error) {
	return ok(s.status(&s.sdUpload, "upload"))
}

// sdTransferKey: GET /securitydomain/upload (and /securitydomain/transferkey):
// the exchange key of a new, not yet activated HSM.
func (s *handler) sdTransferKey(q *request) (result, error) {
	pub, err := s.h.TransferKey(q.ctx, q.caller)
	if err != nil {
		return result{}, err
	}
	return ok(transferKeyJSON{KeyFormat: "jwk", TransferKey: jsonWebKey{Kty: "RSA", KeyOps: []string{"wrapKey", "encrypt"},
		N: pub.N.Bytes(), E: big.NewInt(int64(pub.E)).Bytes()}})
}

// sdUploadOp: POST /securitydomain/upload with the sealed domain.
func (s *handler) sdUploadOp(q *request) (result, error) {
	var req sdValue
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	sealed, err := decodeB64(req.Value)
	if err != nil || len(sealed) == 0 {
		return result{}, badParameter("value must be the base64url of the sealed security domain")
	}
	if err := s.h.UploadSecurityDomain(q.ctx, q.caller, sealed); err != nil {
		s.setStatus(&s.sdUpload, StatusFailed)
		return result{}, err
	}
	s.setStatus(&s.sdUpload, StatusSuccess)
	return result{status: http.StatusAccepted, v: sdStatus{Status: StatusSuccess, StatusDetails: "the security domain upload completed"},
		header: map[string]string{"Azure-AsyncOperation": q.base + "/securitydomain/upload/pending?api-version=" + q.r.URL.Query().Get("api-version")}}, nil
}
