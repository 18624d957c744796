package wal

import (
	"bytes"
	"io"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"testing"
)

// FuzzParseFrame: any bytes decode to a frame that stays within them, or to
// a refusal; a frame written under one salt never checks out under another.
func FuzzParseFrame(f *testing.F) {
	s := salt{n: 7, epoch: 0x1234}
	f.Add(appendFrame(nil, s.key(), 1, 3, 0, []byte("three readings")))
	f.Add(appendMark(nil, s.key(), 4, 9))
	f.Add(appendMark(nil, s.key(), 0, 0))
	f.Add(make([]byte, frameHead))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, parse := range []func([]byte) (frame, frameState){
			func(b []byte) (frame, frameState) { return parseFrame(b, s.key()) },
			parseFrameV1,
		} {
			fr, state := parse(b)
			if state != frameOK {
				continue
			}
			if fr.size > len(b) || fr.size < frameHeadV1 || len(fr.payload) > MaxPayload {
				t.Fatalf("frame of %d bytes (payload %d) from %d bytes", fr.size, len(fr.payload), len(b))
			}
			if !fr.mark && (fr.first == 0 || fr.last < fr.first) {
				t.Fatalf("frame %d-%d accepted", fr.first, fr.last)
			}
		}
		if fr, state := parseFrame(b, s.key()); state == frameOK {
			if _, other := parseFrame(b, salt{n: 8, epoch: 0x1234}.key()); other == frameOK {
				t.Fatalf("frame %d-%d checks out under two salts", fr.first, fr.last)
			}
		}
	})
}

// FuzzCheckHeader: any bytes are a header or a refusal, and a header reads
// back as written.
func FuzzCheckHeader(f *testing.F) {
	f.Add(appendHeader(nil, salt{n: 1, epoch: 99}, 42))
	f.Add(append(append([]byte(nil), magicV1[:]...), make([]byte, 24)...))
	f.Add(make([]byte, headerSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := checkHeader(b)
		if err != nil {
			return
		}
		if !h.legacy && !bytes.Equal(appendHeader(nil, h.salt, h.base)[:36], b[:36]) {
			t.Fatalf("header %+v does not read back as written", h)
		}
	})
}

// FuzzReplay: a segment file of any content replays without a panic, and
// whatever it hands out lies within the file.
func FuzzReplay(f *testing.F) {
	seg := appendHeader(nil, salt{n: 1, epoch: 5}, 0)
	key := salt{n: 1, epoch: 5}.key()
	seg = appendFrame(seg, key, 1, 2, 0, []byte("ab"))
	seg = appendFrame(seg, key, 3, 3, 2, []byte("c"))
	f.Add(seg)
	f.Add(append(bytes.Clone(seg[:60]), 0xff, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs := memFS{segName(1): bytes.Clone(b)}
		l, err := Open(Options{Dir: "/", SegmentSize: MinSegmentSize, FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		if _, err := l.Replay(0, func(first, last uint64, p []byte) error {
			if first == 0 || last < first || len(p) > len(b) {
				t.Fatalf("record %d-%d of %d bytes from a %d-byte file", first, last, len(p), len(b))
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// memFS is the least file system Replay needs: files in memory, by name.
type memFS map[string][]byte

func (m memFS) Create(name string) (File, error) {
	name = filepath.Base(name)
	if _, ok := m[name]; ok {
		return nil, fs.ErrExist
	}
	m[name] = nil
	return memFile{m, name}, nil
}

func (m memFS) Open(name string) (File, error) {
	if _, ok := m[filepath.Base(name)]; !ok {
		return nil, fs.ErrNotExist
	}
	return memFile{m, filepath.Base(name)}, nil
}

func (m memFS) Rename(o, n string) error {
	m[filepath.Base(n)] = m[filepath.Base(o)]
	delete(m, filepath.Base(o))
	return nil
}

func (m memFS) Remove(name string) error      { delete(m, filepath.Base(name)); return nil }
func (m memFS) List(string) ([]string, error) { return slices.Sorted(maps.Keys(m)), nil }
func (m memFS) MkdirAll(string) error         { return nil }
func (m memFS) SyncDir(string) error          { return nil }

type memFile struct {
	m    memFS
	name string
}

func (f memFile) ReadAt(p []byte, off int64) (int, error) {
	b := f.m[f.name]
	if off >= int64(len(b)) {
		return 0, io.EOF
	}
	n := copy(p, b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f memFile) WriteAt(p []byte, off int64) (int, error) {
	b := f.m[f.name]
	if end := off + int64(len(p)); end > int64(len(b)) {
		b = append(b, make([]byte, end-int64(len(b)))...)
	}
	copy(b[off:], p)
	f.m[f.name] = b
	return len(p), nil
}

func (f memFile) Sync() error          { return nil }
func (f memFile) DropCache() error     { return nil }
func (f memFile) Size() (int64, error) { return int64(len(f.m[f.name])), nil }
func (f memFile) Close() error         { return nil }
