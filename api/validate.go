package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/assetsup/webhooks/events"
	"github.com/assetsup/webhooks/netguard"
)

// Limits on webhook fields.
const (
	maxNameLength = 100
	maxURLLength  = 2048
)

// decodeJSON reads exactly one JSON object into dst, refusing unknown fields, trailing
// data and bodies over the cap, with a message that says which.
func decodeJSON[T any](c *gin.Context, dst *T) error {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	// Decoding through a pointer tells a JSON null, which is no object, from {}.
	var obj *T
	if err := dec.Decode(&obj); err != nil {
		return decodeProblem(err)
	}
	if obj == nil {
		return badRequest("invalid_json", "request body must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return decodeProblem(err)
		}
		return badRequest("invalid_json", "body must hold a single JSON object")
	}
	*dst = *obj
	return nil
}

func decodeProblem(err error) error {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large",
			Message: fmt.Sprintf("request body exceeds %d bytes", maxErr.Limit)}
	case errors.Is(err, io.EOF):
		return badRequest("invalid_json", "request body must be a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("invalid_json", "malformed JSON")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badRequest("invalid_json", "request body must be a JSON object")
		}
		return badRequest("invalid_field", fmt.Sprintf("%s must be %s", typeErr.Field, fieldKind(typeErr.Field)))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown_field", strings.TrimPrefix(err.Error(), "json: ")+" is not accepted")
	default:
		return badRequest("invalid_json", "malformed JSON")
	}
}

func fieldKind(field string) string {
	switch {
	case field == "events" || strings.HasPrefix(field, "events."):
		return "a list of event names"
	case field == "isActive":
		return "true or false"
	case field == "headers":
		return "an object of header names to values"
	case field == "rateLimit":
		return `an object {"perSecond": number, "burst": integer}, or null`
	case field == "rateLimit.perSecond":
		return "a number"
	case field == "rateLimit.burst", field == "maxInFlight":
		return "a whole number"
	case field == "filter":
		return "a string (a CEL expression), or null"
	default:
		return "a string"
	}
}

func validateName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", badRequest("invalid_name", "name is required")
	case strings.ContainsRune(name, 0):
		// PostgreSQL text cannot hold NUL; the driver would drop it and store another name.
		return "", badRequest("invalid_name", "name must not contain NUL characters")
	case utf8.RuneCountInString(name) > maxNameLength:
		return "", badRequest("invalid_name", fmt.Sprintf("name must be at most %d characters", maxNameLength))
	}
	return name, nil
}

// validateURL accepts absolute http(s) URLs with a host and no credentials, and
// refuses literal private addresses unless the policy allows them. Hostnames are
// checked again at delivery time, after DNS resolution.
func validateURL(raw string, policy *netguard.Policy) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", badRequest("invalid_url", "url is required")
	}
	if len(raw) > maxURLLength {
		return "", badRequest("invalid_url", fmt.Sprintf("url must be at most %d characters", maxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", badRequest("invalid_url", "url is not a valid URL")
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme != "http" && scheme != "https":
		return "", badRequest("invalid_url", "url must be an absolute http or https URL")
	case u.Hostname() == "":
		return "", badRequest("invalid_url", "url must have a host")
	case u.User != nil:
		return "", badRequest("invalid_url", "url must not carry a user name or password")
	case u.Port() != "" && !validPort(u.Port()):
		return "", badRequest("invalid_url", "url port must be between 1 and 65535")
	}
	if err := policy.CheckURL(raw); err != nil {
		return "", badRequest("forbidden_url", "url points to a private, loopback or link-local address, which is not allowed")
	}
	return raw, nil
}

func validPort(p string) bool {
	n := 0
	for _, r := range p {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
		if n > 65535 {
			return false
		}
	}
	return n >= 1
}

func validateEvents(list []string) ([]string, error) {
	if len(list) == 0 {
		return nil, badRequest("invalid_events", "events is required: a non-empty list of "+events.Names())
	}
	seen := make(map[string]bool, len(list))
	for _, e := range list {
		if !events.NotificationEvent(e).Valid() {
			return nil, badRequest("invalid_events", fmt.Sprintf("unknown event %q; valid events: %s", e, events.Names()))
		}
		if seen[e] {
			return nil, badRequest("invalid_events", fmt.Sprintf("event %q is listed twice", e))
		}
		seen[e] = true
	}
	return list, nil
}
