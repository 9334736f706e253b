package ui

import (
	"context"
	"errors"

	"github.com/gantry-ci/gantry/services/gateway/auth"
)

// TokenCheck adapts the gateway's tokens to Config.Authenticate. The
// gateway mounts the UI as
//
//	ui.Handler(ui.Config{Reader: ui.BusReader{Bus: b}, Authenticate: ui.TokenCheck(tokens), Log: log})
//
// and serves POST /ui/login and /ui/logout, which the sign-in form and the
// sign-out button post to.
func TokenCheck(tokens *auth.Tokens) func(context.Context, string) (string, error) {
	return func(_ context.Context, tok string) (string, error) {
		e, ok := tokens.Lookup(tok)
		if !ok {
			return "", errors.New("unknown token")
		}
		return e.Name, nil
	}
}
