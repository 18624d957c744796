package httpapi

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// web holds the technician's page: plain HTML, CSS and JavaScript, embedded
// so the gateway serves it with nothing fetched from outside the LAN.
//
//go:embed web
var web embed.FS

// pagePolicy lets the page load only what the gateway itself serves, and
// connect only to it: its API and its live stream at ws(s)://host (not
// every ws: host, which would let an injected script send data anywhere).
func pagePolicy(host string) string {
	connect := "'self'"
	if validHost(host) {
		connect += " ws://" + host + " wss://" + host // older browsers do not count ws: as 'self'
	}
	return "default-src 'self'; connect-src " + connect + "; img-src 'self' data:; " +
		"style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
}

// validHost reports whether a Host header is a plain host[:port] that may
// go into the policy as it is.
func validHost(h string) bool {
	return h != "" && len(h) <= 255 && !strings.ContainsFunc(h, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r))
	})
}

// pageRoutes serves the page at / and its files under /assets/, each with
// a strong ETag from its content (embedded files have no modification time).
func (s *Server) pageRoutes(e *gin.Engine) {
	assets, _ := fs.Sub(web, "web") // the directory is embedded above
	etags := map[string]string{}
	_ = fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(assets, path)
		sum := sha256.Sum256(b)
		etags["/"+path] = `"` + hex.EncodeToString(sum[:8]) + `"`
		return err
	})
	etags["/"] = etags["/index.html"]
	files := http.FileServerFS(assets)
	serve := func(c *gin.Context, path string) {
		h := c.Writer.Header()
		h.Set("Content-Security-Policy", pagePolicy(c.Request.Host))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // revalidate: 304 while the ETag holds
		if tag, ok := etags[path]; ok {
			h.Set("ETag", entityTag(c, tag))
		}
		c.Request.URL.Path = path
		files.ServeHTTP(c.Writer, c.Request)
	}
	e.GET("/", func(c *gin.Context) { serve(c, "/") })
	e.GET("/assets/*file", func(c *gin.Context) { serve(c, c.Param("file")) })
}
