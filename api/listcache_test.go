package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// listNames lists user's webhooks and returns their names and the ETag.
func listNames(t *testing.T, s *testServer, user string) ([]string, string) {
	t.Helper()
	rec := s.do(t, http.MethodGet, "/webhooks", user, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	var list []struct {
		Name         string `json:"name"`
		FailureCount int    `json:"failureCount"`
		IsActive     bool   `json:"isActive"`
	}
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &list))
	var names []string
	for _, w := range list {
		names = append(names, w.Name)
		if w.FailureCount > 0 {
			names = append(names, "failures:"+w.Name)
		}
	}
	return names, rec.Header().Get("ETag")
}

// The list is cached between requests: every way a webhook changes (the API, a
// delivery's outcome written by the worker, another replica) must show on the next read.
func TestListIsNeverStale(t *testing.T) {
	s := newServer(t)
	user := newUser()
	a := s.create(t, user, validHook("a"))
	names, etag0 := listNames(t, s, user)
	require.Equal(t, []string{"a"}, names)
	names, again := listNames(t, s, user)
	require.Equal(t, []string{"a"}, names)
	require.Equal(t, etag0, again, "nothing changed, same version")

	steps := []struct {
		name   string
		change func(t *testing.T)
		want   []string
	}{
		{"created through the API", func(t *testing.T) { s.create(t, user, validHook("b")) }, []string{"b", "a"}},
		{"renamed through the API", func(t *testing.T) {
			rec := s.do(t, http.MethodPatch, "/webhooks/"+a.ID, user, `{"name":"a2"}`)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		}, []string{"b", "a2"}},
		{"failure counted by a delivery (the worker's write)", func(t *testing.T) {
			_, err := s.db.ExecContext(context.Background(), "UPDATE webhooks SET failure_count = 1 WHERE id = ?", a.ID)
			require.NoError(t, err)
		}, []string{"b", "a2", "failures:a2"}},
		{"deleted through the API", func(t *testing.T) {
			require.Equal(t, http.StatusNoContent, s.do(t, http.MethodDelete, "/webhooks/"+a.ID, user, "").Code)
		}, []string{"b"}},
	}
	seen := map[string]bool{etag0: true}
	for _, step := range steps {
		step.change(t)
		names, etag := listNames(t, s, user)
		assert.Equal(t, step.want, names, step.name)
		assert.False(t, seen[etag], "%s: a new state needs a new ETag", step.name)
		seen[etag] = true
	}

	// Another user's change leaves this user's version alone, and never shows up here.
	_, before := listNames(t, s, user)
	s.create(t, newUser(), validHook("someone else's"))
	names, after := listNames(t, s, user)
	assert.Equal(t, before, after)
	assert.Equal(t, []string{"b"}, names)
}

func TestListConditionalRequest(t *testing.T) {
	s := newServer(t)
	user := newUser()
	s.create(t, user, validHook("a"))
	_, etag := listNames(t, s, user)
	require.Regexp(t, `^"2-[0-9a-f]{32}"$`, etag)
	auth := "Bearer " + s.token(t, user)

	tests := []struct {
		name        string
		ifNoneMatch string
		want        int
	}{
		{"the current ETag", etag, http.StatusNotModified},
		{"weak form", "W/" + etag, http.StatusNotModified},
		{"one of a list", `"1-stale", ` + etag, http.StatusNotModified},
		{"any", "*", http.StatusNotModified},
		{"another ETag", `"1-00000000000000000000000000000000"`, http.StatusOK},
		{"unquoted", etag[1 : len(etag)-1], http.StatusOK},
		{"none", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := s.newRequest(http.MethodGet, "/webhooks", auth)
			if tt.ifNoneMatch != "" {
				req.Header.Set("If-None-Match", tt.ifNoneMatch)
			}
			rec := s.serve(req)
			assert.Equal(t, tt.want, rec.Code)
			assert.Equal(t, etag, rec.Header().Get("ETag"))
			if tt.want == http.StatusNotModified {
				assert.Empty(t, rec.Body.String())
			}
		})
	}

	// After a change the old ETag no longer matches.
	s.create(t, user, validHook("b"))
	req := s.newRequest(http.MethodGet, "/webhooks", auth)
	req.Header.Set("If-None-Match", etag)
	rec := s.serve(req)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.NotEqual(t, etag, rec.Header().Get("ETag"))

	// Another user's ETag confirms nothing about this user's list.
	other := newUser()
	_, otherTag := listNames(t, s, other)
	req = s.newRequest(http.MethodGet, "/webhooks", auth)
	req.Header.Set("If-None-Match", otherTag)
	assert.Equal(t, http.StatusOK, s.serve(req).Code)
}
