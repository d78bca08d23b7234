package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
	"github.com/hsmlab/hsmlab/emulators/mhsm/rbac"
	"github.com/hsmlab/hsmlab/emulators/mhsm/server"
	"github.com/hsmlab/hsmlab/topology"
)

// restAdmin is topology.KeyAdmin over the Key Vault REST API: key
// management through the azkeys SDK, role assignments through the data
// plane's RBAC paths, each request with a token of the acting principal,
// sent the way an operator's tooling reaches the HSM — to the endpoint
// Traffic Manager resolves for the primary region, outside the workloads'
// private endpoints. Errors wrap the emulator's sentinels, so faults'
// errors.Is checks work as against the core.
type restAdmin struct {
	e       *env
	mu      sync.Mutex
	clients map[string]*azkeys.Client
	hc      *http.Client
}

var _ topology.KeyAdmin = (*restAdmin)(nil)

func newRESTAdmin(e *env) *restAdmin {
	return &restAdmin{e: e, clients: map[string]*azkeys.Client{}, hc: &http.Client{Transport: &router{e: e, base: e.tr}}}
}

func (a *restAdmin) client(principal string) (*azkeys.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[principal]; ok {
		return c, nil
	}
	c, err := azkeys.NewClient(a.e.vaultURL, a.e.credential(principal), a.e.azkeysOptions(""))
	if err != nil {
		return nil, err
	}
	a.clients[principal] = c
	return c, nil
}

// sentinels the REST errors map back to, by the code the server sends
// (innererror first).
var restSentinels = []error{
	mhsm.ErrKeyDisabled, mhsm.ErrKeyExpired, mhsm.ErrKeyNotYetValid, mhsm.ErrPurgeProtected, mhsm.ErrNotActivated,
	mhsm.ErrConflict, mhsm.ErrThrottled, mhsm.ErrUnavailable, mhsm.ErrBadParameter,
}

// restErr turns an SDK or HTTP error into one wrapping the emulator's
// sentinel for its code.
func restErr(op string, status int, code, inner string, err error) error {
	var s error
	switch {
	case inner == server.CodeForbiddenByRBAC:
		s = rbac.ErrForbidden
	case code == server.CodeAssignmentAbsent:
		s = rbac.ErrAssignmentNotFound
	case status == http.StatusNotFound && strings.Contains(op, "deleted"):
		s = mhsm.ErrDeletedKeyNotFound
	case status == http.StatusNotFound && code == mhsm.CodeKeyNotFound:
		s = mhsm.ErrKeyNotFound
	case status == http.StatusConflict && strings.Contains(op, "role"):
		s = rbac.ErrConflict
	default:
		for _, cand := range restSentinels {
			c, st := mhsm.Code(cand)
			if st == status && (c == inner || c == code) {
				s = cand
				break
			}
		}
	}
	if s == nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %v", op, s, err)
}

func sdkErr(op string, err error) error {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: %w: %v", op, mhsm.ErrUnavailable, err)
	}
	inner := ""
	if re.RawResponse != nil && re.RawResponse.Body != nil {
		if b, ok := re.RawResponse.Body.(interface{ Bytes() []byte }); ok {
			inner = innerCode(b.Bytes())
		}
	}
	return restErr(op, re.StatusCode, re.ErrorCode, inner, err)
}

func innerCode(data []byte) string {
	var body struct {
		Error struct {
			Code       string `json:"code"`
			InnerError *struct {
				Code string `json:"code"`
			} `json:"innererror"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &body) != nil || body.Error.InnerError == nil {
		return ""
	}
	return body.Error.InnerError.Code
}

func fromBundle(name string, attrs *azkeys.KeyAttributes, kid *azkeys.ID) mhsm.KeyVersion {
	kv := mhsm.KeyVersion{Name: name}
	if kid != nil {
		kv.KID, kv.Name, kv.Version = string(*kid), kid.Name(), kid.Version()
	}
	if attrs != nil {
		kv.Attr.Enabled = attrs.Enabled != nil && *attrs.Enabled
		if attrs.NotBefore != nil {
			kv.Attr.NotBefore = *attrs.NotBefore
		}
		if attrs.Expires != nil {
			kv.Attr.Expires = *attrs.Expires
		}
		if attrs.Created != nil {
			kv.Attr.Created = *attrs.Created
		}
		if attrs.Updated != nil {
			kv.Attr.Updated = *attrs.Updated
		}
	}
	return kv
}

func keyID(k *azkeys.JSONWebKey) *azkeys.ID {
	if k == nil {
		return nil
	}
	return k.KID
}

// ListVersions implements topology.KeyAdmin.
func (a *restAdmin) ListVersions(ctx context.Context, c mhsm.Caller, name string) ([]mhsm.KeyVersion, error) {
	cl, err := a.client(c.Principal)
	if err != nil {
		return nil, err
	}
	var out []mhsm.KeyVersion
	pager := cl.NewListKeyPropertiesVersionsPager(name, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, sdkErr("list versions of "+name, err)
		}
		for _, kp := range page.Value {
			if kp != nil {
				out = append(out, fromBundle(name, kp.Attributes, kp.KID))
			}
		}
	}
	return out, nil
}

// UpdateKey implements topology.KeyAdmin (attributes only: enabled,
// not-before, expiry).
func (a *restAdmin) UpdateKey(ctx context.Context, c mhsm.Caller, name, ver string, o mhsm.KeyOptions) (mhsm.KeyVersion, error) {
	cl, err := a.client(c.Principal)
	if err != nil {
		return mhsm.KeyVersion{}, err
	}
	r, err := cl.UpdateKey(ctx, name, ver, azkeys.UpdateKeyParameters{
		KeyAttributes: &azkeys.KeyAttributes{Enabled: o.Enabled, NotBefore: o.NotBefore, Expires: o.Expires}}, nil)
	if err != nil {
		return mhsm.KeyVersion{}, sdkErr("update key "+name, err)
	}
	return fromBundle(name, r.Attributes, keyID(r.Key)), nil
}

// DeleteKey implements topology.KeyAdmin.
func (a *restAdmin) DeleteKey(ctx context.Context, c mhsm.Caller, name string) (mhsm.DeletedKey, error) {
	cl, err := a.client(c.Principal)
	if err != nil {
		return mhsm.DeletedKey{}, err
	}
	r, err := cl.DeleteKey(ctx, name, nil)
	if err != nil {
		return mhsm.DeletedKey{}, sdkErr("delete key "+name, err)
	}
	out := mhsm.DeletedKey{KeyVersion: fromBundle(name, r.Attributes, keyID(r.Key))}
	if r.RecoveryID != nil {
		out.RecoveryID = *r.RecoveryID
	}
	return out, nil
}

// RecoverDeletedKey implements topology.KeyAdmin.
func (a *restAdmin) RecoverDeletedKey(ctx context.Context, c mhsm.Caller, name string) (mhsm.KeyVersion, error) {
	cl, err := a.client(c.Principal)
	if err != nil {
		return mhsm.KeyVersion{}, err
	}
	r, err := cl.RecoverDeletedKey(ctx, name, nil)
	if err != nil {
		return mhsm.KeyVersion{}, sdkErr("recover deleted key "+name, err)
	}
	return fromBundle(name, r.Attributes, keyID(r.Key)), nil
}

// RotateKey implements topology.KeyAdmin.
func (a *restAdmin) RotateKey(ctx context.Context, c mhsm.Caller, name string) (mhsm.KeyVersion, mhsm.Served, error) {
	cl, err := a.client(c.Principal)
	if err != nil {
		return mhsm.KeyVersion{}, mhsm.Served{}, err
	}
	r, err := cl.RotateKey(ctx, name, nil)
	if err != nil {
		return mhsm.KeyVersion{}, mhsm.Served{}, sdkErr("rotate key "+name, err)
	}
	return fromBundle(name, r.Attributes, keyID(r.Key)), mhsm.Served{}, nil
}

// PurgeDeletedKey purges a soft-deleted key over the REST API; purge
// protection refuses it (an error wrapping mhsm.ErrPurgeProtected).
func (a *restAdmin) PurgeDeletedKey(ctx context.Context, c mhsm.Caller, name string) error {
	cl, err := a.client(c.Principal)
	if err != nil {
		return err
	}
	if _, err := cl.PurgeDeletedKey(ctx, name, nil); err != nil {
		return sdkErr("purge deleted key "+name, err)
	}
	return nil
}

// Role assignments: the data plane's RBAC paths, JSON as the azadmin rbac
// client sends it.

type assignmentJSON struct {
	Name       string `json:"name"`
	Properties struct {
		Scope            string `json:"scope,omitempty"`
		RoleDefinitionID string `json:"roleDefinitionId"`
		PrincipalID      string `json:"principalId"`
	} `json:"properties"`
}

const roleDefinitionPrefix = "Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/"

func (j assignmentJSON) assignment(scope rbac.Scope) rbac.Assignment {
	sc := rbac.Scope(j.Properties.Scope)
	if sc == "" {
		sc = scope
	}
	return rbac.Assignment{Name: j.Name, Principal: j.Properties.PrincipalID, Scope: sc,
		RoleDefinitionID: strings.TrimPrefix(j.Properties.RoleDefinitionID, roleDefinitionPrefix)}
}

func scopePath(scope rbac.Scope) string {
	s := strings.Trim(string(scope), "/")
	return "/" + s + "/providers/Microsoft.Authorization/roleAssignments"
}

// rbacCall sends one RBAC request as principal and decodes the answer.
func (a *restAdmin) rbacCall(ctx context.Context, principal, op, method, path string, query url.Values, body, out any) error {
	tk, err := a.e.credential(principal).GetToken(ctx, policy.TokenRequestOptions{})
	if err != nil {
		return fmt.Errorf("%s: token: %w", op, err)
	}
	tok := tk.Token
	if query == nil {
		query = url.Values{}
	}
	query.Set("api-version", server.APIVersion)
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.e.vaultURL+path+"?"+query.Encode(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w: %v", op, mhsm.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("%s: %w: %v", op, mhsm.ErrUnavailable, err)
	}
	if resp.StatusCode >= 300 {
		var eb struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		_ = json.Unmarshal(data, &eb)
		return restErr(op, resp.StatusCode, eb.Error.Code, innerCode(data),
			fmt.Errorf("%s %s: %s", resp.Status, eb.Error.Code, eb.Error.Message))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s: decode: %w", op, err)
		}
	}
	return nil
}

// ListRoleAssignments implements topology.KeyAdmin: the assignments in
// effect at scope ($filter=atScope()).
func (a *restAdmin) ListRoleAssignments(ctx context.Context, c mhsm.Caller, scope rbac.Scope) ([]rbac.Assignment, error) {
	var page struct {
		Value []assignmentJSON `json:"value"`
	}
	if err := a.rbacCall(ctx, c.Principal, "list role assignments", http.MethodGet, scopePath(scope), url.Values{"$filter": {"atScope()"}}, nil, &page); err != nil {
		return nil, err
	}
	out := make([]rbac.Assignment, 0, len(page.Value))
	for _, j := range page.Value {
		out = append(out, j.assignment(scope))
	}
	return out, nil
}

// CreateRoleAssignment implements topology.KeyAdmin.
func (a *restAdmin) CreateRoleAssignment(ctx context.Context, c mhsm.Caller, as rbac.Assignment) (rbac.Assignment, error) {
	var body assignmentJSON
	body.Properties.RoleDefinitionID, body.Properties.PrincipalID = as.RoleDefinitionID, as.Principal
	var out assignmentJSON
	if err := a.rbacCall(ctx, c.Principal, "create role assignment", http.MethodPut, scopePath(as.Scope)+"/"+url.PathEscape(as.Name), nil,
		map[string]any{"properties": body.Properties}, &out); err != nil {
		return rbac.Assignment{}, err
	}
	return out.assignment(as.Scope), nil
}

// DeleteRoleAssignment implements topology.KeyAdmin.
func (a *restAdmin) DeleteRoleAssignment(ctx context.Context, c mhsm.Caller, scope rbac.Scope, name string) (rbac.Assignment, error) {
	var out assignmentJSON
	if err := a.rbacCall(ctx, c.Principal, "delete role assignment", http.MethodDelete, scopePath(scope)+"/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return rbac.Assignment{}, err
	}
	return out.assignment(scope), nil
}

var _ policy.Transporter = (*router)(nil)
