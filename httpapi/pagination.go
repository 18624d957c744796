package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// Page sizes of paginated lists.
const (
	DefaultPerPage = 50
	MaxPerPage     = 1000
)

type page struct {
	Page, PerPage int
}

// parsePage reads page and per_page. An invalid page is a 400 with code
// 4001; an invalid per_page a 400 naming the field.
func parsePage(c *gin.Context) (page, error) {
	p := page{Page: 1, PerPage: DefaultPerPage}
	if v, ok := c.GetQuery("page"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, &httpError{Status: http.StatusBadRequest, Errors: []apiError{{Code: codeInvalidPage, Field: "page",
				Message: "page: must be a whole number from 1, not " + quote(v)}}}
		}
		p.Page = n
	}
	if v, ok := c.GetQuery("per_page"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPerPage {
			return p, fieldError(http.StatusBadRequest, "per_page", "must be a whole number from 1 to "+itoa(MaxPerPage)+", not "+quote(v))
		}
		p.PerPage = n
	}
	return p, nil
}

// links builds the Link header (RFC 8288) for page p of last, keeping every
// other query parameter the client sent.
func (p page) links(u *url.URL, last int) string {
	link := func(n int, rel string) string {
		q := u.Query()
		q.Set("page", itoa(n))
		q.Set("per_page", itoa(p.PerPage))
		return "<" + u.Path + "?" + q.Encode() + `>; rel="` + rel + `"`
	}
	parts := []string{link(1, "first")}
	if p.Page > 1 {
		parts = append(parts, link(p.Page-1, "prev"))
	}
	if p.Page < last {
		parts = append(parts, link(p.Page+1, "next"))
	}
	parts = append(parts, link(last, "last"))
	return strings.Join(parts, ", ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// readingID is a reading's cloud-wide identity, "{gateway_id}:{seq}".
func readingID(gateway string, seq uint64) string {
	return gateway + ":" + strconv.FormatUint(seq, 10)
}
