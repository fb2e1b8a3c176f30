package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/assetsup/webhooks/models"
	"github.com/assetsup/webhooks/netguard"
	"github.com/assetsup/webhooks/secrets"
)

// WebhookHandler serves the webhook registry.
type WebhookHandler struct {
	db     *bun.DB
	box    *secrets.Box
	policy *netguard.Policy
	cfg    Config
	lists  *listCache
	// recoveries starts what PATCH recoverMissed and a rotation set going.
	recoveries *recoveries
}

// NewWebhookHandler builds the registry handler.
func NewWebhookHandler(d Deps) *WebhookHandler {
	return &WebhookHandler{db: d.DB, box: d.Box, policy: d.Policy, cfg: d.Config, lists: newListCache(d.Config.ListCacheBytes),
		recoveries: newRecoveries(d)}
}

// Webhook is the API's view of a webhook: never its secret, sealed or not.
type Webhook struct {
	ID              string     `json:"id"`
	UserID          string     `json:"userId"`
	Name            string     `json:"name"`
	URL             string     `json:"url"`
	Events          []string   `json:"events"`
	IsActive        bool       `json:"isActive"`
	LastTriggeredAt *time.Time `json:"lastTriggeredAt"`
	FailureCount    int        `json:"failureCount"`
	DisabledReason  *string    `json:"disabledReason"`
	DisabledAt      *time.Time `json:"disabledAt"`
	CreatedAt       time.Time  `json:"createdAt"`
	UpdatedAt       time.Time  `json:"updatedAt"`
	// Headers lists the custom headers sent with every request, by name and fingerprint.
	Headers []HeaderView `json:"headers"`
	// RateLimit, MaxInFlight and Filter are null when the webhook sets none.
	RateLimit   *RateLimit `json:"rateLimit"`
	MaxInFlight *int       `json:"maxInFlight"`
	Filter      *string    `json:"filter"`
}

// CreatedWebhook is the create response: the only place the secret ever appears.
type CreatedWebhook struct {
	Webhook
	Secret string `json:"secret"`
}

// RotatedSecret is the rotate-secret response, shown once.
type RotatedSecret struct {
	Secret                  string    `json:"secret"`
	PreviousSecretExpiresAt time.Time `json:"previousSecretExpiresAt"`
}

func toWebhook(w *models.Webhook) Webhook {
	return Webhook{
		ID: w.ID, UserID: w.UserID, Name: w.Name, URL: w.URL, Events: w.Events, IsActive: w.IsActive,
		LastTriggeredAt: w.LastTriggeredAt, FailureCount: w.FailureCount, DisabledReason: w.DisabledReason,
		DisabledAt: w.DisabledAt, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		Headers: headerViews(w.Headers), RateLimit: rateLimitView(w), MaxInFlight: w.MaxInFlight, Filter: w.Filter,
	}
}

type createRequest struct {
	Name   *string  `json:"name"`
	URL    *string  `json:"url"`
	Events []string `json:"events"`
	controls
}

func (h *WebhookHandler) create(c *gin.Context) {
	var req createRequest
	if err := decodeJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	w, ctl, err := h.validateCreate(req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	w.ID = uuid.NewString()
	w.UserID = userID(c)
	w.IsActive = true
	secret, err := h.seal(w)
	if err != nil {
		_ = c.Error(err)
		return
	}
	sealed, err := h.sealHeaders(w.ID, ctl.Headers)
	if err != nil {
		_ = c.Error(err)
		return
	}
	w.SetHeaders(sealed)
	if ctl.RateLimit != nil {
		w.RateLimitPerSecond, w.RateLimitBurst = &ctl.RateLimit.PerSecond, &ctl.RateLimit.Burst
	}
	w.MaxInFlight, w.Filter = ctl.MaxInFlight, ctl.Filter
	if err := models.CreateWebhook(c.Request.Context(), h.db, w, h.cfg.MaxWebhooksPerUser); err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusCreated, CreatedWebhook{Webhook: toWebhook(w), Secret: secret})
}

func (h *WebhookHandler) validateCreate(req createRequest) (*models.Webhook, parsedControls, error) {
	if req.Name == nil {
		return nil, parsedControls{}, badRequest("invalid_name", "name is required")
	}
	name, err := validateName(*req.Name)
	if err != nil {
		return nil, parsedControls{}, err
	}
	if req.URL == nil {
		return nil, parsedControls{}, badRequest("invalid_url", "url is required")
	}
	u, err := validateURL(*req.URL, h.policy)
	if err != nil {
		return nil, parsedControls{}, err
	}
	evs, err := validateEvents(req.Events)
	if err != nil {
		return nil, parsedControls{}, err
	}
	ctl, err := h.parseControls(req.controls)
	if err != nil {
		return nil, parsedControls{}, err
	}
	return &models.Webhook{Name: name, URL: u, Events: evs}, ctl, nil
}

// seal issues a new secret for w and stores only its fingerprint and sealed form.
func (h *WebhookHandler) seal(w *models.Webhook) (string, error) {
	secret, err := secrets.Generate()
	if err != nil {
		return "", err
	}
	sealed, version, err := h.box.Seal(w.ID, secret)
	if err != nil {
		return "", fmt.Errorf("seal secret: %w", err)
	}
	w.SecretHash, w.SecretSealed, w.SecretKeyVersion = secrets.Fingerprint(secret), sealed, version
	return secret, nil
}

// listRender names the list's JSON shape inside its ETag, so a client's cached copy of
// an older shape is not confirmed as current after an upgrade.
const listRender = "2"

// list answers with every webhook of the user, newest first. Its ETag is the version of
// the user's rows: a client that sends it back in If-None-Match gets 304 while nothing
// changed, and an unchanged list is served from the cache without reading the rows.
func (h *WebhookHandler) list(c *gin.Context) {
	ctx, user := c.Request.Context(), userID(c)
	version, err := models.WebhookListVersion(ctx, h.db, user)
	if err != nil {
		_ = c.Error(err)
		return
	}
	etag := `"` + listRender + "-" + version + `"`
	c.Header("ETag", etag)
	c.Header("Cache-Control", "private, no-cache")
	if etagMatches(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	body, ok := h.lists.get(user, version)
	if !ok {
		// Read after the version: if a change lands in between, the body is newer than
		// the version it is stored under, and the next request simply renders again.
		hooks, err := models.ListWebhooks(ctx, h.db, user)
		if err != nil {
			_ = c.Error(err)
			return
		}
		out := make([]Webhook, len(hooks))
		for i := range hooks {
			out[i] = toWebhook(&hooks[i])
		}
		if body, err = json.Marshal(out); err != nil {
			_ = c.Error(fmt.Errorf("encode webhooks: %w", err))
			return
		}
		h.lists.put(user, version, body)
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2).
func etagMatches(header, etag string) bool {
	for candidate := range strings.SplitSeq(header, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == etag {
			return true
		}
	}
	return false
}

// webhookID reads :id; a malformed id cannot name a webhook, so it is a 404 too.
func webhookID(c *gin.Context) (string, error) {
	id, err := uuid.Parse(c.Param("id"))
	if err != nil {
		return "", models.ErrNotFound
	}
	return id.String(), nil
}

func (h *WebhookHandler) load(c *gin.Context) (*models.Webhook, error) {
	id, err := webhookID(c)
	if err != nil {
		return nil, err
	}
	return models.GetWebhook(c.Request.Context(), h.db, userID(c), id)
}

func (h *WebhookHandler) get(c *gin.Context) {
	w, err := h.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	c.JSON(http.StatusOK, toWebhook(w))
}

type updateRequest struct {
	Name     *string   `json:"name"`
	URL      *string   `json:"url"`
	Events   *[]string `json:"events"`
	IsActive *bool     `json:"isActive"`
	// RecoverMissed, with isActive true, recovers what the webhook missed while off.
	RecoverMissed json.RawMessage `json:"recoverMissed"`
	controls
}

func (h *WebhookHandler) update(c *gin.Context) {
	id, err := webhookID(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	var req updateRequest
	if err := decodeJSON(c, &req); err != nil {
		_ = c.Error(err)
		return
	}
	patch, err := h.validateUpdate(id, req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	before, err := h.beforeRecoverMissed(c, id, req)
	if err != nil {
		_ = c.Error(err)
		return
	}
	w, err := models.UpdateWebhook(c.Request.Context(), h.db, userID(c), id, patch)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if before != nil {
		h.answerRecoverMissed(c, before, w)
		return
	}
	c.JSON(http.StatusOK, toWebhook(w))
}

func (h *WebhookHandler) validateUpdate(id string, req updateRequest) (models.WebhookPatch, error) {
	p := models.WebhookPatch{IsActive: req.IsActive}
	ctl, err := h.parseControls(req.controls)
	if err != nil {
		return p, err
	}
	if ctl.SetHeaders {
		// The whole set is replaced, so no value has to be shown back to be kept.
		sealed, err := h.sealHeaders(id, ctl.Headers)
		if err != nil {
			return p, err
		}
		p.Headers = &sealed
	}
	p.SetRateLimit, p.RateLimit = ctl.SetRateLimit, ctl.RateLimit
	p.SetMaxInFlight, p.MaxInFlight = ctl.SetMaxInFlight, ctl.MaxInFlight
	p.SetFilter, p.Filter = ctl.SetFilter, ctl.Filter
	if req.Name != nil {
		name, err := validateName(*req.Name)
		if err != nil {
			return p, err
		}
		p.Name = &name
	}
	if req.URL != nil {
		u, err := validateURL(*req.URL, h.policy)
		if err != nil {
			return p, err
		}
		p.URL = &u
	}
	if req.Events != nil {
		evs, err := validateEvents(*req.Events)
		if err != nil {
			return p, err
		}
		p.Events = evs
	}
	return p, nil
}

func (h *WebhookHandler) delete(c *gin.Context) {
	id, err := webhookID(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	if err := models.DeleteWebhook(c.Request.Context(), h.db, userID(c), id); err != nil {
		_ = c.Error(err)
		return
	}
	c.Status(http.StatusNoContent)
}

// rotateSecret issues a new secret, shown once; the old one keeps signing alongside
// it for WEBHOOK_SECRET_GRACE so receivers can switch without dropping deliveries.
func (h *WebhookHandler) rotateSecret(c *gin.Context) {
	w, err := h.load(c)
	if err != nil {
		_ = c.Error(err)
		return
	}
	secret, err := secrets.Generate()
	if err != nil {
		_ = c.Error(err)
		return
	}
	sealed, version, err := h.box.Seal(w.ID, secret)
	if err != nil {
		_ = c.Error(err)
		return
	}
	expires, err := models.RotateSecret(c.Request.Context(), h.db, w.UserID, w.ID, models.SecretRotation{
		Hash: secrets.Fingerprint(secret), Sealed: sealed, KeyVersion: version, Grace: h.cfg.SecretGrace,
	})
	if err != nil {
		_ = c.Error(err)
		return
	}
	h.recoveries.notifyRotationEnded(c.Request.Context(), w, expires)
	c.JSON(http.StatusOK, RotatedSecret{Secret: secret, PreviousSecretExpiresAt: expires})
}
