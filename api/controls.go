package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/assetsup/webhooks/filter"
	"github.com/assetsup/webhooks/headers"
	"github.com/assetsup/webhooks/models"
)

// Bounds on the endpoint controls a webhook may set: sanity limits on what a receiver
// may ask for, not service settings.
const (
	maxRatePerSecond = 10000
	maxRateBurst     = 1000
	maxInFlightCap   = 1000
)

// HeaderView is a custom header as the API shows it: never its value.
type HeaderView struct {
	Name string `json:"name"`
	// Fingerprint is the first 16 hex digits of the value's SHA-256, so its owner can
	// tell which value is set without the API showing it.
	Fingerprint string `json:"fingerprint"`
}

// RateLimit is a webhook's delivery rate: perSecond on average, up to burst at once.
type RateLimit struct {
	PerSecond float64 `json:"perSecond"`
	Burst     int     `json:"burst"`
}

// rateLimitRequest is RateLimit as a request gives it; burst defaults to 1 (evenly spaced).
type rateLimitRequest struct {
	PerSecond *float64 `json:"perSecond"`
	Burst     *int     `json:"burst"`
}

// controls are the endpoint controls of a create or a patch, each raw so that a patch
// tells an absent field (leave it) from null (remove the control).
type controls struct {
	Headers     json.RawMessage `json:"headers"`
	RateLimit   json.RawMessage `json:"rateLimit"`
	MaxInFlight json.RawMessage `json:"maxInFlight"`
	Filter      json.RawMessage `json:"filter"`
}

// parsedControls is controls validated; each Set says the request named the control,
// and a nil value with Set removes it.
type parsedControls struct {
	SetHeaders     bool
	Headers        []headers.Header
	SetRateLimit   bool
	RateLimit      *models.RateLimit
	SetMaxInFlight bool
	MaxInFlight    *int
	SetFilter      bool
	Filter         *string
}

// parse validates every control the request named.
func (h *WebhookHandler) parseControls(c controls) (parsedControls, error) {
	var p parsedControls
	var hs map[string]string
	set, err := decodeField(c.Headers, "headers", &hs)
	if err != nil {
		return p, err
	}
	if p.SetHeaders = set; set && len(hs) > 0 {
		if p.Headers, err = headers.Validate(hs, h.cfg.MaxHeaders, h.cfg.MaxHeaderBytes); err != nil {
			return p, badRequest("invalid_headers", err.Error())
		}
	}

	var rl *rateLimitRequest
	if p.SetRateLimit, err = decodeField(c.RateLimit, "rateLimit", &rl); err != nil {
		return p, err
	}
	if rl != nil {
		if p.RateLimit, err = validateRateLimit(*rl); err != nil {
			return p, err
		}
	}

	if p.SetMaxInFlight, err = decodeField(c.MaxInFlight, "maxInFlight", &p.MaxInFlight); err != nil {
		return p, err
	}
	if n := p.MaxInFlight; n != nil && (*n < 1 || *n > maxInFlightCap) {
		return p, badRequest("invalid_max_in_flight", fmt.Sprintf("maxInFlight must be between 1 and %d (or null for no cap)", maxInFlightCap))
	}

	var text *string
	if p.SetFilter, err = decodeField(c.Filter, "filter", &text); err != nil {
		return p, err
	}
	if text != nil && strings.TrimSpace(*text) != "" {
		f := strings.TrimSpace(*text)
		if err := h.compileFilter(f); err != nil {
			return p, err
		}
		p.Filter = &f
	}
	return p, nil
}

func validateRateLimit(rl rateLimitRequest) (*models.RateLimit, error) {
	if rl.PerSecond == nil || *rl.PerSecond <= 0 || *rl.PerSecond > maxRatePerSecond {
		return nil, badRequest("invalid_rate_limit",
			fmt.Sprintf("rateLimit.perSecond must be a number above 0 and at most %d (deliveries per second; 0.5 is one every 2 s)", maxRatePerSecond))
	}
	burst := 1
	if rl.Burst != nil {
		burst = *rl.Burst
	}
	if burst < 1 || burst > maxRateBurst {
		return nil, badRequest("invalid_rate_limit", fmt.Sprintf("rateLimit.burst must be between 1 and %d", maxRateBurst))
	}
	return &models.RateLimit{PerSecond: *rl.PerSecond, Burst: burst}, nil
}

// compileFilter compiles a filter as the worker will run it, so a mistake is a 400 that
// says where, and a filter too costly on every event is refused now.
func (h *WebhookHandler) compileFilter(text string) error {
	if h.cfg.FilterMaxBytes <= 0 {
		return badRequest("invalid_filter", "filters are not enabled on this service")
	}
	_, err := filter.Compile(text, filter.Limits{MaxLength: h.cfg.FilterMaxBytes, CostLimit: h.cfg.FilterCostLimit})
	var fe *filter.Error
	switch {
	case errors.As(err, &fe):
		return badRequest("invalid_filter", "filter: "+fe.Error())
	case err != nil:
		return fmt.Errorf("compile filter: %w", err)
	}
	return nil
}

// decodeField decodes one raw field strictly into dst and says whether the request
// named it (null included, which leaves dst at its zero value). Its errors name the field.
func decodeField[T any](raw json.RawMessage, field string, dst *T) (bool, error) {
	if raw == nil {
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			name := field
			if typeErr.Field != "" {
				name += "." + typeErr.Field
			}
			return true, badRequest("invalid_field", fmt.Sprintf("%s must be %s", name, fieldKind(name)))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return true, badRequest("unknown_field", field+": "+strings.TrimPrefix(err.Error(), "json: ")+" is not accepted")
		default:
			return true, badRequest("invalid_field", fmt.Sprintf("%s must be %s", field, fieldKind(field)))
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return true, badRequest("invalid_field", fmt.Sprintf("%s must be %s", field, fieldKind(field)))
	}
	return true, nil
}

// sealHeaders puts hs into stored form for webhook id: names and fingerprints to show,
// names and values sealed like the signing secret.
func (h *WebhookHandler) sealHeaders(id string, hs []headers.Header) (models.SealedHeaders, error) {
	info := make([]models.HeaderInfo, len(hs))
	for i, x := range hs {
		info[i] = models.HeaderInfo{Name: x.Name, Fingerprint: headers.Fingerprint(x.Value)}
	}
	sealed, version, err := headers.Seal(h.box, id, hs)
	if err != nil {
		return models.SealedHeaders{}, fmt.Errorf("seal headers: %w", err)
	}
	return models.SealedHeaders{Info: info, Sealed: sealed, KeyVersion: version}, nil
}

func headerViews(info []models.HeaderInfo) []HeaderView {
	out := make([]HeaderView, len(info))
	for i, x := range info {
		out[i] = HeaderView(x)
	}
	return out
}

func rateLimitView(w *models.Webhook) *RateLimit {
	if w.RateLimitPerSecond == nil {
		return nil
	}
	burst := 1
	if w.RateLimitBurst != nil {
		burst = *w.RateLimitBurst
	}
	return &RateLimit{PerSecond: *w.RateLimitPerSecond, Burst: burst}
}
