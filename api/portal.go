package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/assetsup/webhooks/portal"
)

// Portal defaults, for routers built without them (tests); the service takes its values
// from PORTAL_SESSION_TTL and PORTAL_LINK_TTL.
const (
	defaultPortalSessionTTL = time.Hour
	defaultPortalLinkTTL    = 2 * time.Minute
)

const portalLinkExpiresKey = "portal_session_expires"

// portalHandler serves the portal: its page, the sessions that open it, and the
// exchange of a link for a session.
type portalHandler struct {
	tokens      *portal.Tokens
	files       *portal.Handler
	sessionTTL  time.Duration
	linkTTL     time.Duration
	publicURL   string
	workflowURL string // the Temporal Web UI's workflow list of the namespace; "" when not configured
}

func newPortalHandler(d Deps) *portalHandler {
	files, err := portal.NewHandler(portal.Options{FrameAncestors: d.Config.PortalFrameAncestors})
	if err != nil {
		// config.Validate checks PORTAL_FRAME_ANCESTORS first: this is a programming error.
		panic("api: " + err.Error())
	}
	p := &portalHandler{
		tokens:     portal.NewTokens(d.Config.JWTSecret),
		files:      files,
		sessionTTL: d.Config.PortalSessionTTL,
		linkTTL:    d.Config.PortalLinkTTL,
		publicURL:  strings.TrimRight(d.Config.PortalPublicURL, "/"),
	}
	if p.sessionTTL <= 0 {
		p.sessionTTL = defaultPortalSessionTTL
	}
	if p.linkTTL <= 0 {
		p.linkTTL = min(defaultPortalLinkTTL, p.sessionTTL)
	}
	if ui := strings.TrimRight(d.Config.PortalTemporalUIURL, "/"); ui != "" {
		ns := d.Config.TemporalNamespace
		if ns == "" {
			ns = "default"
		}
		p.workflowURL = ui + "/namespaces/" + url.PathEscape(ns) + "/workflows"
	}
	return p
}

// PortalSession answers POST /portal/sessions: where to send the user.
type PortalSession struct {
	// URL opens the portal; the link token is in its fragment, which browsers never send.
	URL string `json:"url"`
	// Path is URL without scheme and host, for a host application that proxies the API.
	Path          string    `json:"path"`
	LinkExpiresAt time.Time `json:"linkExpiresAt"`
	ExpiresAt     time.Time `json:"expiresAt"`
}

// PortalExchange answers POST /portal/exchange: the session the page keeps in memory.
type PortalExchange struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expiresAt"`
	// WorkflowURL is the Temporal Web UI's page of the namespace's workflows, to which
	// the page appends a workflow id; null when PORTAL_TEMPORAL_UI_URL is empty.
	WorkflowURL *string `json:"workflowUrl"`
}

// createSession issues a portal link for the user of the backend's JWT.
func (p *portalHandler) createSession(c *gin.Context) {
	now := time.Now()
	sessionEnd := now.Add(p.sessionTTL)
	linkEnd := now.Add(min(p.linkTTL, p.sessionTTL))
	link, err := p.tokens.Issue(portal.Link, userID(c), now, linkEnd, sessionEnd)
	if err != nil {
		_ = c.Error(err)
		return
	}
	path := portal.Prefix + "/#link=" + link
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, PortalSession{
		URL: p.origin(c.Request) + path, Path: path, LinkExpiresAt: linkEnd, ExpiresAt: sessionEnd,
	})
}

// origin is PORTAL_PUBLIC_URL, else the scheme and host this request reached.
func (p *portalHandler) origin(r *http.Request) string {
	if p.publicURL != "" {
		return p.publicURL
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// authenticateLink accepts a portal link token, and nothing else, for the exchange.
func (p *portalHandler) authenticateLink(c *gin.Context) {
	raw, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(raw) == "" {
		unauthorized(c, "missing portal link: open the portal from the application")
		return
	}
	claims, err := p.tokens.Verify(portal.Link, strings.TrimSpace(raw), time.Now())
	switch {
	case errors.Is(err, portal.ErrExpired):
		unauthorized(c, "this portal link has expired: open the portal again from the application")
		return
	case err != nil:
		unauthorized(c, "this portal link is not valid: open the portal again from the application")
		return
	}
	c.Set(userIDKey, claims.Subject)
	c.Set(portalLinkExpiresKey, claims.SessionExpiresAt.Time)
	c.Next()
}

// exchange turns a link into the session the page keeps in memory. The link may be
// exchanged again within its short life (replicas share no state to spend it), but it
// never grants more than the session it names, which ends when the link says.
func (p *portalHandler) exchange(c *gin.Context) {
	now := time.Now()
	end, _ := c.Get(portalLinkExpiresKey)
	sessionEnd, _ := end.(time.Time)
	token, err := p.tokens.Issue(portal.Session, userID(c), now, sessionEnd, time.Time{})
	if err != nil {
		_ = c.Error(err)
		return
	}
	out := PortalExchange{Token: token, ExpiresAt: sessionEnd}
	if p.workflowURL != "" {
		out.WorkflowURL = &p.workflowURL
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, out)
}

// acceptSessions lets a portal session token stand in for the backend's JWT on the
// routes the portal uses: the user's /webhooks routes and the event catalogue. Every
// other token goes to jwtAuth unchanged.
func (p *portalHandler) acceptSessions(jwtAuth gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		raw, _ := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
		raw = strings.TrimSpace(raw)
		switch {
		case strings.HasPrefix(raw, portal.LinkPrefix):
			unauthorized(c, "a portal link is not a bearer token: the portal page exchanges it at POST /portal/exchange")
			return
		case !strings.HasPrefix(raw, portal.SessionPrefix):
			jwtAuth(c)
			return
		case !portalRoute(c.FullPath()):
			unauthorized(c, "a portal session is good only for the /webhooks routes and /events")
			return
		}
		claims, err := p.tokens.Verify(portal.Session, raw, time.Now())
		switch {
		case errors.Is(err, portal.ErrExpired):
			unauthorized(c, "portal session expired: open the portal again from the application")
			return
		case err != nil:
			unauthorized(c, "portal session not valid: open the portal again from the application")
			return
		}
		c.Set(userIDKey, claims.Subject)
		c.Next()
	}
}

func portalRoute(route string) bool {
	return route == "/events" || route == "/webhooks" || strings.HasPrefix(route, "/webhooks/")
}

// serveFiles answers the paths that are no API route with the portal's files, when
// they are portal files; anything else goes on to the JSON 404.
func (p *portalHandler) serveFiles(c *gin.Context) {
	if !p.files.Serves(c.Request.Method, c.Request.URL.Path) {
		c.Next()
		return
	}
	p.files.ServeHTTP(c.Writer, c.Request)
	c.Abort()
}
