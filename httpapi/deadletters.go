package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
)

type deadLetterBody struct {
	ID       string    `json:"id"`
	First    uint64    `json:"first"`
	Last     uint64    `json:"last"`
	Readings uint64    `json:"readings"`
	Status   int       `json:"status"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	Retry    string    `json:"retry"`
}

// listDeadLetters lists the batches the cloud refused for good.
func (s *Server) listDeadLetters(c *gin.Context) {
	ob, err := s.st.Outbox()
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]deadLetterBody, 0, len(ob.DeadLetters))
	for _, d := range ob.DeadLetters {
		id := strconv.FormatUint(d.First, 10)
		out = append(out, deadLetterBody{ID: id, First: d.First, Last: d.Last, Readings: d.Last - d.First + 1,
			Status: d.Status, Reason: d.Reason, At: d.At.UTC(), Retry: "/api/v1/uplink/deadletters/" + id + "/retry"})
	}
	reply(c, http.StatusOK, cacheRevalidate, map[string]any{"dead_letters": out})
}

// retryDeadLetter queues a dead letter for another send: 202, since the
// cloud's answer comes later (GET the list again to see it leave).
func (s *Server) retryDeadLetter(c *gin.Context) {
	first, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil {
		s.fail(c, errorf(http.StatusNotFound, "no dead letter %s", quote(c.Param("id"))))
		return
	}
	if s.deps.Uplink == nil {
		s.fail(c, errorf(http.StatusConflict, "no uplink is configured, so there is nothing to retry with"))
		return
	}
	if err := s.deps.Uplink.RetryDeadLetter(c.Request.Context(), first); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("api dead letter retried", "first", first, "by", who(c).User)
	reply(c, http.StatusAccepted, "no-store", map[string]any{"id": c.Param("id"), "state": "queued"})
}

// retryDeadLetters queues every dead letter for another send (but those
// queued already): 202 with how many.
func (s *Server) retryDeadLetters(c *gin.Context) {
	if s.deps.Uplink == nil {
		s.fail(c, errorf(http.StatusConflict, "no uplink is configured, so there is nothing to retry with"))
		return
	}
	n, err := s.deps.Uplink.RetryDeadLetters(c.Request.Context())
	if err != nil {
		s.fail(c, err)
		return
	}
	s.log.Info("api dead letters retried", "queued", n, "by", who(c).User)
	reply(c, http.StatusAccepted, "no-store", map[string]any{"queued": n})
}

// discardDeadLetter gives a dead letter up: its readings will never reach
// the cloud (they are counted as dropped, and retention may delete them).
func (s *Server) discardDeadLetter(c *gin.Context) {
	first, err := strconv.ParseUint(c.Param("id"), 10, 64)
	if err != nil {
		s.fail(c, errorf(http.StatusNotFound, "no dead letter %s", quote(c.Param("id"))))
		return
	}
	if err := s.st.DiscardDeadLetter(first); err != nil {
		s.fail(c, err)
		return
	}
	s.log.Warn("api dead letter discarded: its readings will never reach the cloud", "first", first, "by", who(c).User)
	c.Status(http.StatusNoContent)
}
