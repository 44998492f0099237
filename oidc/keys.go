package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Keys is the provider's key set as the worker last saw it: what the
// oidc policy reads at data.oidc_keys. FetchedAt is when it was fetched;
// Error the last refresh's failure (the keys are then the last good
// ones, and the policy refuses them once they are older than it allows).
type Keys struct {
	Issuer    string          `json:"issuer"`
	JWKS      json.RawMessage `json:"jwks,omitempty"`
	FetchedAt time.Time       `json:"fetched_at,omitzero"`
	Error     string          `json:"error,omitempty"`
}

// FetchKeys fetches the provider's JSON Web Key Set. A set without keys,
// or with a key that names no type, is refused.
func (p *Provider) FetchKeys(ctx context.Context) (json.RawMessage, error) {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	var raw json.RawMessage
	if err := p.getJSON(ctx, p.JWKSURI, &raw); err != nil {
		return nil, fmt.Errorf("fetch the keys of %s: %w", p.Issuer, err)
	}
	if err := json.Unmarshal(raw, &set); err != nil || len(set.Keys) == 0 {
		return nil, fmt.Errorf("fetch the keys of %s: %s holds no key set", p.Issuer, p.JWKSURI)
	}
	for i, k := range set.Keys {
		if kty, _ := k["kty"].(string); kty == "" {
			return nil, fmt.Errorf("fetch the keys of %s: key %d names no kty", p.Issuer, i)
		}
	}
	return raw, nil
}

// KeyRefresher keeps the keys of the trusted issuer fresh: it discovers
// the provider and fetches its keys at once and then every Every, and
// hands each result to Set. A failed refresh keeps the last good keys,
// with the error, so the policy can tell stale keys from fresh ones and
// fail closed when they are too old. Issuer is read at each refresh (the
// policy data names it, and a policy reload may change it); "" skips.
type KeyRefresher struct {
	Issuer func() string
	Every  time.Duration
	Set    func(context.Context, Keys) error
	Logger *slog.Logger
	// Now is the clock of FetchedAt (time.Now when nil).
	Now func() time.Time

	last Keys
}

// Refresh fetches the keys once and hands them (or the failure, with the
// last good keys) to Set.
func (r *KeyRefresher) Refresh(ctx context.Context) error {
	now := time.Now
	if r.Now != nil {
		now = r.Now
	}
	issuer := r.Issuer()
	if issuer == "" {
		return nil
	}
	k := r.last
	if k.Issuer != issuer {
		k = Keys{Issuer: issuer} // another provider: none of its keys yet
	}
	fetchCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	jwks, err := r.fetch(fetchCtx, issuer)
	if err == nil {
		k.JWKS, k.FetchedAt, k.Error = jwks, now().UTC(), ""
		r.last = k
	} else {
		k.Error = err.Error()
	}
	if serr := r.Set(ctx, k); serr != nil {
		return serr
	}
	return err
}

func (r *KeyRefresher) fetch(ctx context.Context, issuer string) (json.RawMessage, error) {
	p, err := Discover(ctx, nil, issuer)
	if err != nil {
		return nil, err
	}
	return p.FetchKeys(ctx)
}

// Run refreshes every Every (5 minutes when 0) until ctx ends, logging
// each failure. Call Refresh first to have keys before the first action.
func (r *KeyRefresher) Run(ctx context.Context) {
	every := r.Every
	if every <= 0 {
		every = 5 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.RefreshLogged(ctx)
	}
}

// RefreshLogged refreshes once and logs a failure.
func (r *KeyRefresher) RefreshLogged(ctx context.Context) {
	if err := r.Refresh(ctx); err != nil && ctx.Err() == nil && r.Logger != nil {
		r.Logger.Warn("identity provider keys not refreshed; the last good ones stay until the policy finds them too old",
			"issuer", r.last.Issuer, "error", err)
	}
}
