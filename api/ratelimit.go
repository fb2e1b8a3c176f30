package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// userLimiters holds one token bucket per user. Idle buckets are swept so the map
// stays as large as the set of recently active users.
type userLimiters struct {
	mu        sync.Mutex
	limit     rate.Limit
	burst     int
	byUser    map[string]*userLimiter
	lastSweep time.Time
}

type userLimiter struct {
	lim      *rate.Limiter
	lastSeen time.Time
}

const limiterIdle = 10 * time.Minute

func (u *userLimiters) get(user string, now time.Time) *rate.Limiter {
	u.mu.Lock()
	defer u.mu.Unlock()
	if now.Sub(u.lastSweep) > limiterIdle {
		for k, l := range u.byUser {
			if now.Sub(l.lastSeen) > limiterIdle {
				delete(u.byUser, k)
			}
		}
		u.lastSweep = now
	}
	l, ok := u.byUser[user]
	if !ok {
		l = &userLimiter{lim: rate.NewLimiter(u.limit, u.burst)}
		u.byUser[user] = l
	}
	l.lastSeen = now
	return l.lim
}

// rateLimit answers 429 with Retry-After once a user exceeds perSecond requests
// (with burst), so one portal user cannot crowd out the others.
func rateLimit(perSecond float64, burst int) gin.HandlerFunc {
	limiters := &userLimiters{limit: rate.Limit(perSecond), burst: burst, byUser: map[string]*userLimiter{}}
	return func(c *gin.Context) {
		now := time.Now()
		r := limiters.get(userID(c), now).ReserveN(now, 1)
		if delay := r.DelayFrom(now); delay > 0 {
			r.CancelAt(now)
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(delay.Seconds()))))
			writeError(c, http.StatusTooManyRequests, "rate_limited", "too many requests: slow down and retry after the Retry-After delay")
			return
		}
		c.Next()
	}
}
