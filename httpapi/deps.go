package httpapi

import (
	"errors"
)

// ErrBusy, wrapped by a dependency's error, says "try again shortly": the
// API answers 503 with Retry-After and the error's message.
var ErrBusy = errors.New("busy")
