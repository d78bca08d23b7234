package server

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hsmlab/hsmlab/emulators/mhsm"
)

type rotationPolicyJSON struct {
	ID              string               `json:"id,omitempty"`
	LifetimeActions []lifetimeActionJSON `json:"lifetimeActions"`
	Attributes      *rotationAttrsJSON   `json:"attributes,omitempty"`
}

type lifetimeActionJSON struct {
	Trigger *triggerJSON `json:"trigger"`
	Action  *actionJSON  `json:"action"`
}

type triggerJSON struct {
	TimeAfterCreate  string `json:"timeAfterCreate,omitempty"`
	TimeBeforeExpiry string `json:"timeBeforeExpiry,omitempty"`
}

type actionJSON struct {
	Type string `json:"type"`
}

type rotationAttrsJSON struct {
	ExpiryTime string `json:"expiryTime,omitempty"`
	Created    *int64 `json:"created,omitempty"`
	Updated    *int64 `json:"updated,omitempty"`
}

func (s *handler) policyJSON(q *request, name string, p *mhsm.RotationPolicy) rotationPolicyJSON {
	out := rotationPolicyJSON{ID: q.base + "/keys/" + name + "/rotationpolicy", LifetimeActions: []lifetimeActionJSON{}, Attributes: &rotationAttrsJSON{}}
	if p == nil {
		return out // no policy set: an empty one, as the service shows a key without auto-rotation
	}
	out.ID = s.rebase(q, p.ID)
	for _, a := range p.LifetimeActions {
		la := lifetimeActionJSON{Trigger: &triggerJSON{}, Action: &actionJSON{Type: a.Action}}
		if a.TimeAfterCreate > 0 {
			la.Trigger.TimeAfterCreate = formatISO8601(a.TimeAfterCreate)
		}
		if a.TimeBeforeExpiry > 0 {
			la.Trigger.TimeBeforeExpiry = formatISO8601(a.TimeBeforeExpiry)
		}
		out.LifetimeActions = append(out.LifetimeActions, la)
	}
	if p.ExpiresAfter > 0 {
		out.Attributes.ExpiryTime = formatISO8601(p.ExpiresAfter)
	}
	out.Attributes.Created, out.Attributes.Updated = unixTime(p.Created), unixTime(p.Updated)
	return out
}

// getRotationPolicy: GET /keys/{name}/rotationpolicy.
func (s *handler) getRotationPolicy(q *request) (result, error) {
	p, err := s.h.GetRotationPolicy(q.ctx, q.caller, q.params[0])
	if err != nil {
		return result{}, err
	}
	return ok(s.policyJSON(q, q.params[0], p))
}

// putRotationPolicy: PUT /keys/{name}/rotationpolicy.
func (s *handler) putRotationPolicy(q *request) (result, error) {
	var req rotationPolicyJSON
	if e := decodeJSON(q.body, &req); e != nil {
		return result{}, e
	}
	var p mhsm.RotationPolicy
	for i, la := range req.LifetimeActions {
		if la.Action == nil || la.Action.Type == "" || la.Trigger == nil {
			return result{}, badParameter("lifetimeActions[%d] needs an action type and a trigger", i)
		}
		a := mhsm.LifetimeAction{Action: la.Action.Type}
		var err error
		if la.Trigger.TimeAfterCreate != "" {
			if a.TimeAfterCreate, err = parseISO8601(la.Trigger.TimeAfterCreate); err != nil {
				return result{}, badParameter("lifetimeActions[%d].trigger.timeAfterCreate: %v", i, err)
			}
		}
		if la.Trigger.TimeBeforeExpiry != "" {
			if a.TimeBeforeExpiry, err = parseISO8601(la.Trigger.TimeBeforeExpiry); err != nil {
				return result{}, badParameter("lifetimeActions[%d].trigger.timeBeforeExpiry: %v", i, err)
			}
		}
		p.LifetimeActions = append(p.LifetimeActions, a)
	}
	if req.Attributes != nil && req.Attributes.ExpiryTime != "" {
		d, err := parseISO8601(req.Attributes.ExpiryTime)
		if err != nil {
			return result{}, badParameter("attributes.expiryTime: %v", err)
		}
		p.ExpiresAfter = d
	}
	np, err := s.h.UpdateRotationPolicy(q.ctx, q.caller, q.params[0], p)
	if err != nil {
		return result{}, err
	}
	return ok(s.policyJSON(q, q.params[0], np))
}

// ISO 8601 durations as Key Vault's rotation policies use them ("P90D",
// "P3M", "PT48H", "P1Y10D"). A year counts 365 days and a month 30 days, as
// in topology files.
const (
	day            = 24 * time.Hour
	maxISONumber   = 100000
	maxISODuration = 100 * 365 * day
)

func parseISO8601(s string) (time.Duration, error) {
	if len(s) < 3 || len(s) > 40 || s[0] != 'P' {
		return 0, fmt.Errorf("%.40q is not an ISO 8601 duration", s)
	}
	var total time.Duration
	inTime, seen := false, false
	num := ""
	for _, c := range s[1:] {
		switch {
		case c >= '0' && c <= '9':
			num += string(c)
			continue
		case c == 'T':
			if inTime || num != "" {
				return 0, fmt.Errorf("%.40q is not an ISO 8601 duration", s)
			}
			inTime = true
			continue
		}
		if num == "" {
			return 0, fmt.Errorf("%.40q is not an ISO 8601 duration", s)
		}
		n, err := strconv.Atoi(num)
		if err != nil || n > maxISONumber {
			return 0, fmt.Errorf("%.40q: number out of range", s)
		}
		num = ""
		var unit time.Duration
		switch {
		case !inTime && c == 'Y':
			unit = 365 * day
		case !inTime && c == 'M':
			unit = 30 * day
		case !inTime && c == 'W':
			unit = 7 * day
		case !inTime && c == 'D':
			unit = day
		case inTime && c == 'H':
			unit = time.Hour
		case inTime && c == 'M':
			unit = time.Minute
		case inTime && c == 'S':
			unit = time.Second
		default:
			return 0, fmt.Errorf("%.40q is not an ISO 8601 duration", s)
		}
		if time.Duration(n) > (maxISODuration-total)/unit {
			return 0, fmt.Errorf("%.40q: longer than 100 years", s)
		}
		total += time.Duration(n) * unit
		seen = true
	}
	if num != "" || !seen {
		return 0, errors.New("incomplete ISO 8601 duration")
	}
	return total, nil
}

// formatISO8601 writes d in days when it is whole days, else in hours,
// minutes and seconds.
func formatISO8601(d time.Duration) string {
	if d%day == 0 {
		return "P" + strconv.FormatInt(int64(d/day), 10) + "D"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / day; days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10) + "D")
		d -= days * day
	}
	b.WriteString("T")
	if h := d / time.Hour; h > 0 {
		b.WriteString(strconv.FormatInt(int64(h), 10) + "H")
		d -= h * time.Hour
	}
	if m := d / time.Minute; m > 0 {
		b.WriteString(strconv.FormatInt(int64(m), 10) + "M")
		d -= m * time.Minute
	}
	if sec := d / time.Second; sec > 0 || b.Len() == 2 {
		b.WriteString(strconv.FormatInt(int64(sec), 10) + "S")
	}
	return b.String()
}
