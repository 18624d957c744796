package storetest

import (
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"fieldgate/store/wal"
)

// ErrCrashed is returned by every operation on a file opened before the
// last simulated power cut: the process that held it is gone.
var ErrCrashed = errors.New("storetest: file handle from before the power cut")

// CrashFS is an in-memory wal.FS that can lose power. Like SQLite's
// crash-test file system and Pebble's strict in-memory one, a power cut
// keeps only what was synced: of the writes since a file's last Sync it
// keeps a random prefix and tears the next one at an arbitrary byte (the
// rest of its range keeps the old bytes or gets garbage); of the creations,
// renames and removals since the last SyncDir it keeps a random prefix.
type CrashFS struct {
	mu      sync.Mutex
	rng     *rand.Rand
	gen     int
	current map[string]*memFile // the namespace a process sees
	durable map[string]*memFile // the namespace as of the last SyncDir
	dirOps  []dirOp             // namespace changes since the last SyncDir
	fault   atomic.Pointer[func(op, name string) error]
}

var _ wal.FS = (*CrashFS)(nil)

type memFile struct {
	data    []byte  // what a reader sees now
	durable []byte  // what survives a power cut
	pending []write // writes since the last Sync, in order
}

type write struct {
	off  int64
	data []byte
}

type dirOp struct {
	kind     string // "create", "rename", "remove"
	old, new string
	f        *memFile
}

// NewCrashFS returns an empty file system whose power cuts draw from rng.
func NewCrashFS(rng *rand.Rand) *CrashFS {
	return &CrashFS{rng: rng, current: map[string]*memFile{}, durable: map[string]*memFile{}}
}

// PowerCut simulates a power failure: every open file handle dies and the
// files keep only what the rules above let survive. The file system can be
// used again at once, as after a reboot.
func (c *CrashFS) PowerCut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	ns := make(map[string]*memFile, len(c.durable))
	for k, v := range c.durable {
		ns[k] = v
	}
	for _, op := range c.dirOps[:c.rng.IntN(len(c.dirOps)+1)] {
		applyDirOp(ns, op)
	}
	c.dirOps = nil
	for _, f := range ns {
		f.cut(c.rng)
	}
	c.durable = ns
	c.current = make(map[string]*memFile, len(ns))
	for k, v := range ns {
		c.current[k] = v
	}
}

func applyDirOp(ns map[string]*memFile, op dirOp) {
	switch op.kind {
	case "create":
		ns[op.new] = op.f
	case "rename":
		if f, ok := ns[op.old]; ok {
			delete(ns, op.old)
			ns[op.new] = f
		}
	case "remove":
		delete(ns, op.old)
	}
}

// cut applies a random prefix of the unsynced writes, tears the next one
// and makes the result the file's durable content.
func (f *memFile) cut(rng *rand.Rand) {
	data := slices.Clone(f.durable)
	keep := rng.IntN(len(f.pending) + 1)
	for i, w := range f.pending {
		if i > keep {
			break
		}
		b := w.data
		if i == keep { // the torn write
			n := rng.IntN(len(b) + 1)
			torn := slices.Clone(b[:n])
			if rng.IntN(2) == 0 && n < len(b) {
				garbage := make([]byte, rng.IntN(len(b)-n+1))
				for j := range garbage {
					garbage[j] = byte(rng.Uint32())
				}
				torn = append(torn, garbage...)
			}
			b = torn
		}
		data = writeAt(data, b, w.off)
	}
	f.data, f.durable, f.pending = data, slices.Clone(data), nil
}

func writeAt(data, b []byte, off int64) []byte {
	if end := off + int64(len(b)); end > int64(len(data)) {
		data = append(data, make([]byte, end-int64(len(data)))...)
	}
	copy(data[off:], b)
	return data
}

// SetFault makes f, or nothing when f is nil, be called before every
// Create, Sync and SyncDir with the operation's name ("create", "sync",
// "syncdir") and the file's path; an error f returns fails the operation.
// f may block to wedge a sync. It is called without the file system's
// lock, and may be set while other goroutines use the file system.
func (c *CrashFS) SetFault(f func(op, name string) error) {
	if f == nil {
		c.fault.Store(nil)
		return
	}
	c.fault.Store(&f)
}

func (c *CrashFS) injectFault(op, name string) error {
	if f := c.fault.Load(); f != nil {
		return (*f)(op, name)
	}
	return nil
}

// Create implements wal.FS.
func (c *CrashFS) Create(name string) (wal.File, error) {
	if err := c.injectFault("create", name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.current[name]; ok {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	f := &memFile{}
	c.current[name] = f
	c.dirOps = append(c.dirOps, dirOp{kind: "create", new: name, f: f})
	return &memHandle{c: c, f: f, name: name, gen: c.gen}, nil
}

// Open implements wal.FS.
func (c *CrashFS) Open(name string) (wal.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.current[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memHandle{c: c, f: f, name: name, gen: c.gen}, nil
}

// Rename implements wal.FS.
func (c *CrashFS) Rename(oldname, newname string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.current[oldname]
	if !ok {
		return &fs.PathError{Op: "rename", Path: oldname, Err: fs.ErrNotExist}
	}
	delete(c.current, oldname)
	c.current[newname] = f
	c.dirOps = append(c.dirOps, dirOp{kind: "rename", old: oldname, new: newname})
	return nil
}

// Remove implements wal.FS.
func (c *CrashFS) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.current[name]; !ok {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(c.current, name)
	c.dirOps = append(c.dirOps, dirOp{kind: "remove", old: name})
	return nil
}

// List implements wal.FS.
func (c *CrashFS) List(dir string) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	prefix := filepath.Clean(dir) + string(filepath.Separator)
	for name := range c.current {
		if rest, ok := strings.CutPrefix(name, prefix); ok && !strings.Contains(rest, string(filepath.Separator)) {
			out = append(out, rest)
		}
	}
	slices.Sort(out)
	return out, nil
}

// MkdirAll implements wal.FS; directories exist implicitly.
func (c *CrashFS) MkdirAll(string) error { return nil }

// SyncDir implements wal.FS.
func (c *CrashFS) SyncDir(dir string) error {
	if err := c.injectFault("syncdir", dir); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.durable = make(map[string]*memFile, len(c.current))
	for k, v := range c.current {
		c.durable[k] = v
	}
	c.dirOps = nil
	return nil
}

// SyncedBytes returns the synced content of a file (nil if it does not
// exist durably): what a power cut now would certainly keep.
func (c *CrashFS) SyncedBytes(name string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.durable[name]; ok {
		return slices.Clone(f.durable)
	}
	return nil
}

type memHandle struct {
	c    *CrashFS
	f    *memFile
	name string
	gen  int
}

func (h *memHandle) live() error {
	if h.gen != h.c.gen {
		return ErrCrashed
	}
	return nil
}

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return 0, err
	}
	if off >= int64(len(h.f.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return 0, err
	}
	h.f.data = writeAt(h.f.data, p, off)
	h.f.pending = append(h.f.pending, write{off, slices.Clone(p)})
	return len(p), nil
}

func (h *memHandle) Sync() error {
	if err := h.c.injectFault("sync", h.name); err != nil {
		return err
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	for _, w := range h.f.pending {
		h.f.durable = writeAt(h.f.durable, w.data, w.off)
	}
	h.f.pending = nil
	return nil
}

func (h *memHandle) Size() (int64, error) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return 0, err
	}
	return int64(len(h.f.data)), nil
}

func (h *memHandle) Close() error {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.live()
}
