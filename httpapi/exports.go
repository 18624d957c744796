package httpapi

import (
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// Export limits: jobs kept (running and finished) and jobs running at once.
const (
	maxExportJobs    = 20
	maxExportRunning = 2
)

// exports runs export jobs in the background, each writing a gzip file in
// dir. Jobs live in memory: a restart forgets them and clears dir.
type exports struct {
	s   *Server
	dir string

	mu   sync.Mutex
	jobs map[string]*exportJob

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type exportJob struct {
	ID    string `json:"id"`
	State string `json:"state"` // running, done or failed
	exportRange
	Readings   int       `json:"readings"`
	Total      int       `json:"total"`
	Progress   float64   `json:"progress"`
	Bytes      int64     `json:"bytes,omitempty"`
	Error      string    `json:"error,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	File       string    `json:"file,omitempty"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`

	path  string
	owner string // the user who started it: only they (or an admin) may see it
}

func newExports(s *Server, dir string) (*exports, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("httpapi: export directory: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dir, "*.gz"))
	if err != nil {
		return nil, err
	}
	for _, f := range old { // files of a previous run: nobody can ask for them
		if err := os.Remove(f); err != nil {
			s.log.Warn("api: removing an old export", "file", f, "err", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &exports{s: s, dir: dir, jobs: map[string]*exportJob{}, ctx: ctx, cancel: cancel}, nil
}

func (x *exports) close() {
	x.cancel()
	x.wg.Wait()
}

// start validates and launches a job.
func (x *exports) start(e exportRange, owner string) (*exportJob, error) {
	now := x.s.opts.Now()
	if err := e.validate(now); err != nil {
		return nil, err
	}
	total := 0 // counted before locking: a long range takes a while
	for _, k := range e.series(x.s.st) {
		n, err := x.s.st.Count(storeQuery(k.Source, k.Quantity, e))
		if err != nil {
			return nil, err
		}
		total += n
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.expire(now)
	running := 0
	for _, j := range x.jobs {
		if j.State == "running" {
			running++
		}
	}
	if running >= maxExportRunning || len(x.jobs) >= maxExportJobs {
		return nil, errorf(http.StatusConflict, "%d exports are running and %d kept; wait for one to finish or expire", running, len(x.jobs))
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	j := &exportJob{ID: hex.EncodeToString(b[:]), State: "running", exportRange: e, Total: total, CreatedAt: now.UTC(), owner: owner}
	j.path = filepath.Join(x.dir, j.ID+"."+e.Format+".gz")
	x.jobs[j.ID] = j
	x.wg.Add(1)
	go x.run(j)
	return j, nil
}

// run writes the job's file, then publishes the outcome.
func (x *exports) run(j *exportJob) {
	defer x.wg.Done()
	err := x.write(j)
	x.mu.Lock()
	defer x.mu.Unlock()
	now := x.s.opts.Now().UTC()
	j.FinishedAt, j.ExpiresAt = now, now.Add(x.s.opts.ExportTTL)
	if err != nil {
		j.State, j.Error = "failed", err.Error()
		x.s.log.Warn("api export failed", "id", j.ID, "err", err)
		if rmErr := os.Remove(j.path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			x.s.log.Warn("api: removing a failed export", "file", j.path, "err", rmErr)
		}
		return
	}
	j.State, j.Progress, j.File = "done", 1, "/api/v1/exports/"+j.ID+"/file"
	if fi, err := os.Stat(j.path); err == nil {
		j.Bytes = fi.Size()
	}
}

func (x *exports) write(j *exportJob) error {
	f, err := os.OpenFile(j.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	err = x.s.writeExport(j.exportRange, zw, func(n int) error {
		x.mu.Lock()
		j.Readings += n
		if j.Total > 0 {
			j.Progress = min(1, float64(j.Readings)/float64(j.Total))
		}
		x.mu.Unlock()
		return x.ctx.Err()
	})
	return errors.Join(err, zw.Close(), f.Close())
}

// expire forgets finished jobs past their expiry and deletes their files.
// The caller holds mu.
func (x *exports) expire(now time.Time) {
	for id, j := range x.jobs {
		if j.State != "running" && now.After(j.ExpiresAt) {
			if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				x.s.log.Warn("api: removing an expired export", "file", j.path, "err", err)
			}
			delete(x.jobs, id)
		}
	}
}

// get returns a snapshot of a job.
func (x *exports) get(id string) (exportJob, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.expire(x.s.opts.Now())
	j, ok := x.jobs[id]
	if !ok {
		return exportJob{}, false
	}
	return *j, true
}

func (s *Server) createExport(c *gin.Context) {
	var e exportRange
	if err := decode(c, &e); err != nil {
		s.fail(c, err)
		return
	}
	j, err := s.exports.start(e, who(c).User)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Location", "/api/v1/exports/"+j.ID)
	s.log.Info("api export started", "id", j.ID, "format", j.Format, "from", j.From, "to", j.To, "readings", j.Total, "by", who(c).User)
	snap, _ := s.exports.get(j.ID)
	reply(c, http.StatusAccepted, "no-store", snap)
}

// ownExport returns the export the request names, if its caller started it
// (or is an admin): another technician must not fetch someone's file.
func (s *Server) ownExport(c *gin.Context) (exportJob, bool) {
	j, ok := s.exports.get(c.Param("id"))
	if p := who(c); ok && j.owner != p.User && p.Role < RoleAdmin {
		return exportJob{}, false // as if absent: ids are not to be probed
	}
	return j, ok
}

func (s *Server) getExport(c *gin.Context) {
	j, ok := s.ownExport(c)
	if !ok {
		s.fail(c, errorf(http.StatusNotFound, "no export %s (exports expire %s after they finish)", quote(c.Param("id")), s.opts.ExportTTL))
		return
	}
	reply(c, http.StatusOK, "no-cache", j)
}

// exportFile serves a finished export's gzip file.
func (s *Server) exportFile(c *gin.Context) {
	j, ok := s.ownExport(c)
	switch {
	case !ok:
		s.fail(c, errorf(http.StatusNotFound, "no export %s", quote(c.Param("id"))))
		return
	case j.State != "done":
		s.fail(c, errorf(http.StatusConflict, "export %s is %s, not done", j.ID, j.State))
		return
	}
	c.Header("Content-Disposition", `attachment; filename="`+exportName(j.exportRange)+`.gz"`)
	c.Header("Cache-Control", "private, max-age=3600")
	c.Header("Content-Type", "application/gzip")
	http.ServeFile(c.Writer, c.Request, j.path)
}
