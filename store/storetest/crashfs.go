package storetest

import (
	"errors"
	"io"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"fieldgate/store/wal"
)

// PageSize is the unit in which CrashFS writes back, loses and tears data.
const PageSize = 4096

// ErrCrashed is returned by every operation on a file opened before the
// last simulated crash or power cut: the process that held it is gone.
var ErrCrashed = errors.New("storetest: a crashed process's file handle or file system")

// CrashFS is an in-memory wal.FS that fails the way a Raspberry Pi's SD card
// and kernel do. It keeps, per file, the device's content and the page
// cache's, and the pages written since their last writeback (dirty).
//
//   - PowerCut keeps only what was written back: of the dirty pages, any
//     subset reaches the device (not a prefix: cards persist pages out of
//     order), each whole, not at all, or torn at an arbitrary byte, the
//     bytes it was changing past the tear keeping their old value or
//     getting garbage; of the
//     creations, renames and removals since the last SyncDir, a random
//     prefix.
//   - Crash is a process that dies: its handles die, but the page cache, and
//     the dirty pages in it, live on until a later PowerCut.
//   - A fault on "sync" (SetFault) fails the fdatasync and then behaves as
//     Linux does after a failed writeback (PostgreSQL's fsync lesson): some
//     dirty pages reached the device, the others are marked clean and lost,
//     though the cache still serves them until DropCache or a power cut.
//   - FlipBit damages a byte on the device, as a wearing card does.
//
// Like SQLite's crash-test file system, Pebble's strict in-memory one and
// ALICE's exploration of crash states, it exists so that tests can put the
// write-ahead log through thousands of such states.
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
	cache  []byte         // what a reader sees: the page cache
	device []byte         // what the device holds
	dirty  map[int64]bool // pages written since their last writeback
}

type dirOp struct {
	kind     string // "create", "rename", "remove"
	old, new string
	f        *memFile
}

// NewCrashFS returns an empty file system whose faults draw from rng.
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
	seen := map[*memFile]bool{}
	for _, m := range []map[string]*memFile{c.current, ns} {
		for _, name := range slices.Sorted(maps.Keys(m)) { // in order: a seed replays a run
			if f := m[name]; !seen[f] {
				seen[f] = true
				f.cut(c.rng)
			}
		}
	}
	c.durable = ns
	c.current = make(map[string]*memFile, len(ns))
	for k, v := range ns {
		c.current[k] = v
	}
}

// Process returns the file system as the process running now sees it: once
// it crashes (Crash, PowerCut), its namespace operations fail too, as its
// file handles do, so that a store or log left behind by a dead process
// (its background goroutines) can change nothing any more. Tests open each
// incarnation of a store or log on a fresh Process.
func (c *CrashFS) Process() wal.FS {
	c.mu.Lock()
	defer c.mu.Unlock()
	return &procFS{c: c, gen: c.gen}
}

// procFS is a CrashFS bound to one process.
type procFS struct {
	c   *CrashFS
	gen int
}

func (p *procFS) Create(name string) (wal.File, error) { return p.c.create(p.gen, name) }
func (p *procFS) Open(name string) (wal.File, error)   { return p.c.open(p.gen, name) }
func (p *procFS) Rename(oldname, newname string) error { return p.c.rename(p.gen, oldname, newname) }
func (p *procFS) Remove(name string) error             { return p.c.remove(p.gen, name) }
func (p *procFS) List(dir string) ([]string, error)    { return p.c.List(dir) }
func (p *procFS) MkdirAll(dir string) error            { return p.c.MkdirAll(dir) }
func (p *procFS) SyncDir(dir string) error             { return p.c.syncDir(p.gen, dir) }

// dead reports whether gen names a process that crashed (-1: anyone's
// call, as through CrashFS itself). c.mu is held.
func (c *CrashFS) dead(gen int) error {
	if gen >= 0 && gen != c.gen {
		return ErrCrashed
	}
	return nil
}

// Crash simulates the death of the process: its file handles die, and
// everything else — the page cache with its dirty pages, the namespace
// changes not yet synced — stays as it was, for a later PowerCut to take.
func (c *CrashFS) Crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
}

// FlipBit flips one bit of a file's content on the device at off, as a
// wearing card does to a page that was synced long ago; the page cache
// keeps its copy until DropCache or a power cut. It reports whether the
// file had a byte there.
func (c *CrashFS) FlipBit(name string, off int64, bit uint) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.current[name]
	if !ok || off >= int64(len(f.device)) {
		return false
	}
	f.device[off] ^= 1 << (bit % 8)
	return true
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

// cut writes back a random subset of the dirty pages, each whole, not at
// all or torn, and makes the device's content the file's.
func (f *memFile) cut(rng *rand.Rand) {
	for _, p := range f.dirtyPages() {
		switch rng.IntN(5) {
		case 0, 1:
			f.writeBack(p, PageSize)
		case 2:
			n := rng.IntN(PageSize)
			f.writeBack(p, n)
			if rng.IntN(2) == 0 { // the rest of a torn page may be garbage
				f.garble(p, p*PageSize+int64(n), rng)
			}
		}
	}
	f.dirty = nil
	f.cache = slices.Clone(f.device)
}

// dirtyPages lists the dirty pages in a stable order.
func (f *memFile) dirtyPages() []int64 {
	pages := make([]int64, 0, len(f.dirty))
	for p := range f.dirty {
		pages = append(pages, p)
	}
	slices.Sort(pages)
	return pages
}

// writeBack copies the first n bytes of page p from the cache to the device.
func (f *memFile) writeBack(p int64, n int) {
	start := p * PageSize
	end := min(start+int64(n), int64(len(f.cache)))
	if end <= start {
		return
	}
	f.device = writeAt(f.device, f.cache[start:end], start)
}

// garble puts random bytes on the device, in page p from offset from on,
// where the cache holds bytes the device does not: a tear can scramble
// what a write was changing, never what was already there.
func (f *memFile) garble(p int64, from int64, rng *rand.Rand) {
	end := min((p+1)*PageSize, int64(len(f.cache)))
	for i := from; i < end; i++ {
		if i >= int64(len(f.device)) || f.cache[i] != f.device[i] {
			f.device = writeAt(f.device, []byte{byte(rng.Uint32())}, i)
		}
	}
}

func writeAt(data, b []byte, off int64) []byte {
	if end := off + int64(len(b)); end > int64(len(data)) {
		data = append(data, make([]byte, end-int64(len(data)))...)
	}
	copy(data[off:], b)
	return data
}

// SetFault makes f, or nothing when f is nil, be called before every
// Create, WriteAt, Sync and SyncDir with the operation's name ("create",
// "write", "sync", "syncdir") and the file's path; an error f returns fails
// the operation (a failed sync as a failed writeback does: see CrashFS).
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
func (c *CrashFS) Create(name string) (wal.File, error) { return c.create(-1, name) }

func (c *CrashFS) create(gen int, name string) (wal.File, error) {
	if err := c.injectFault("create", name); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.dead(gen); err != nil {
		return nil, err
	}
	if _, ok := c.current[name]; ok {
		return nil, &fs.PathError{Op: "create", Path: name, Err: fs.ErrExist}
	}
	f := &memFile{}
	c.current[name] = f
	c.dirOps = append(c.dirOps, dirOp{kind: "create", new: name, f: f})
	return &memHandle{c: c, f: f, name: name, gen: c.gen}, nil
}

// Open implements wal.FS.
func (c *CrashFS) Open(name string) (wal.File, error) { return c.open(-1, name) }

func (c *CrashFS) open(gen int, name string) (wal.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.dead(gen); err != nil {
		return nil, err
	}
	f, ok := c.current[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memHandle{c: c, f: f, name: name, gen: c.gen}, nil
}

// Rename implements wal.FS.
func (c *CrashFS) Rename(oldname, newname string) error { return c.rename(-1, oldname, newname) }

func (c *CrashFS) rename(gen int, oldname, newname string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.dead(gen); err != nil {
		return err
	}
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
func (c *CrashFS) Remove(name string) error { return c.remove(-1, name) }

func (c *CrashFS) remove(gen int, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.dead(gen); err != nil {
		return err
	}
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
func (c *CrashFS) SyncDir(dir string) error { return c.syncDir(-1, dir) }

func (c *CrashFS) syncDir(gen int, dir string) error {
	if err := c.injectFault("syncdir", dir); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.dead(gen); err != nil {
		return err
	}
	c.durable = make(map[string]*memFile, len(c.current))
	for k, v := range c.current {
		c.durable[k] = v
	}
	c.dirOps = nil
	return nil
}

// DeviceBytes returns a file's content on the device (nil if the file does
// not exist): what a power cut now would certainly keep of it.
func (c *CrashFS) DeviceBytes(name string) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.current[name]; ok {
		return slices.Clone(f.device)
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
	if off >= int64(len(h.f.cache)) {
		return 0, io.EOF
	}
	n := copy(p, h.f.cache[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// path is the file's name now (it may have been renamed since it was
// opened), as faults see it.
func (h *memHandle) path() string {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	for name, f := range h.c.current {
		if f == h.f {
			return name
		}
	}
	return h.name
}

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	if err := h.c.injectFault("write", h.path()); err != nil {
		return 0, &fs.PathError{Op: "write", Path: h.name, Err: err}
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return 0, err
	}
	h.f.cache = writeAt(h.f.cache, p, off)
	if h.f.dirty == nil {
		h.f.dirty = map[int64]bool{}
	}
	for pg := off / PageSize; pg*PageSize < off+int64(len(p)); pg++ {
		h.f.dirty[pg] = true
	}
	return len(p), nil
}

func (h *memHandle) Sync() error {
	fault := h.c.injectFault("sync", h.path())
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	for _, p := range h.f.dirtyPages() {
		if fault == nil || h.c.rng.IntN(2) == 0 {
			h.f.writeBack(p, PageSize)
		}
		// After a failed writeback the page is marked clean: the cache
		// keeps serving what the device never got.
	}
	h.f.dirty = nil
	if fault != nil {
		return &fs.PathError{Op: "fdatasync", Path: h.name, Err: fault}
	}
	return nil
}

// DropCache implements wal.File: clean pages are read from the device again.
func (h *memHandle) DropCache() error {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return err
	}
	cache := slices.Clone(h.f.device)
	if n := len(h.f.cache); len(cache) < n {
		cache = append(cache, make([]byte, n-len(cache))...)
	}
	for p := range h.f.dirty {
		start, end := p*PageSize, min((p+1)*PageSize, int64(len(h.f.cache)))
		copy(cache[start:end], h.f.cache[start:end])
	}
	h.f.cache = cache
	return nil
}

func (h *memHandle) Size() (int64, error) {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if err := h.live(); err != nil {
		return 0, err
	}
	return int64(len(h.f.cache)), nil
}

func (h *memHandle) Close() error {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	return h.live()
}
